"""Small helpers that several test folders share (fixtures are in ``tests/conftest.py``; what the
benchmarks share with the tests is in ``benchmarks/_common.py``).

Imported as ``tests.support`` (pytest puts the repository root on ``sys.path``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest


@contextlib.contextmanager
def raises_naming(error: type[Exception], match: str, **named: Any) -> Iterator[Any]:
    """``pytest.raises(error, match=match)`` that also checks the culprit the error names:
    each ``attribute=value`` of ``named`` must be an attribute of the exception."""
    with pytest.raises(error, match=match) as info:
        yield info
    for attribute, value in named.items():
        assert getattr(info.value, attribute) == value, (attribute, info.value)


def written(path: Path, text: str) -> Path:
    """``path`` holding ``text``."""
    path.write_text(text)
    return path


def rosenbrock(x: np.ndarray) -> tuple[float, np.ndarray]:
    """Rosenbrock's valley (minimum 0 at (1, 1)) and its gradient."""
    a, b = x
    f = (1 - a) ** 2 + 100 * (b - a * a) ** 2
    g = np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])
    return f, g


def rosenbrock_hess(x: np.ndarray) -> np.ndarray:
    """The Hessian of :func:`rosenbrock`."""
    return np.array([[2 - 400 * (x[1] - 3 * x[0] ** 2), -400 * x[0]], [-400 * x[0], 200.0]])


def loopback_cluster(**options: Any):
    """A ``distributed.LocalCluster`` of one worker thread in this process on 127.0.0.1, without
    a dashboard; ``options`` (protocol, security, ...) passed on."""
    from distributed import LocalCluster

    where = {"host": "127.0.0.1", "dashboard_address": None}
    return LocalCluster(n_workers=1, threads_per_worker=1, processes=False, **where, **options)


def nuisance_draws(
    rng: np.random.Generator,
    n: int,
    *,
    impact: float,
    pull: float,
    constraint: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random ``(pulls, constraints, impacts)`` of ``n`` nuisances for the impact figures:
    impacts of width ``impact``, pulls of width ``pull``, constraints uniform in
    ``constraint`` (drawn in the order impacts, pulls, constraints)."""
    impacts = rng.normal(0, impact, n)
    return rng.normal(0, pull, n), rng.uniform(*constraint, n), impacts


def histmaker_quiet(datasets: str | Path, out: str | Path, **options: Any):
    """:func:`analysis.histmaker.histmaker` of the W analysis without a progress bar;
    ``options`` (executor, cluster, variations, ...) passed on. Its ``(path, content, result)``."""
    from analysis.histmaker import histmaker

    return histmaker("wmass", datasets, out, progress=False, **options)
