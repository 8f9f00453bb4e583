"""pyhf interoperability: fit a workspace with the structured engine, export a FitInput.

A workspace is read into a :class:`fit.terms.TermsInput` (:func:`read_workspace`: HistFactory's
modifiers as terms of the structured likelihood, pyhf's ``logpdf`` up to a constant) and fitted
by :func:`fit.fit` like any fit input: the same trust-region Newton, covariance, impacts, global
impacts, toys and scans. :func:`fit_workspace` is what ``wmass fit ws.json`` runs. The export
(:func:`to_workspace`, :func:`write_workspace`) lives in :mod:`fit.histfactory.export`.

>>> r = fit_workspace(simple_workspace([5.0, 10.0], [50.0, 60.0], [55, 70]))
>>> round(float(r.pois["mu"]["value"]), 4)
1.0
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .histfactory import (
    GROUPS,
    MODIFIER_TYPES,
    WorkspaceError,
    read_workspace,
    simple_workspace,
    to_workspace,
    workspace_parameters,
    write_workspace,
)
from .terms import TermsInput

__all__ = [
    "GROUPS",
    "MODIFIER_TYPES",
    "TermsInput",
    "WorkspaceError",
    "fit_workspace",
    "read_workspace",
    "simple_workspace",
    "to_workspace",
    "workspace_parameters",
    "write_workspace",
]


def fit_workspace(
    ws: str | os.PathLike | Mapping[str, Any] | TermsInput,
    *,
    data: str | Sequence[float] = "observed",
    measurement: str | None = None,
    modifier_settings: Mapping[str, Mapping[str, str]] | None = None,
    meta: dict[str, Any] | None = None,
    **options: Any,
) -> Any:
    """Fit a pyhf workspace (path, dict or :func:`read_workspace` result) with :func:`fit.fit`.

    The POI is the measurement's ``poi``, reported as the fitted parameter itself. ``options``
    are :func:`fit.fit`'s (``toys``, ``impacts``, ``global_impacts``, ``scan``, ``minimizer``,
    ...): toys are generated at the initial values (Poisson counts, Gaussian and Poisson global
    observables). Impact groups are the modifier types (``staterror`` and ``shapesys`` are
    ``mc_stat``); ``pulls`` are ``value - auxdata`` (``value - 1`` for Poisson gammas).
    """
    from .fitter import fit
    from .provenance import provenance

    fi = (
        ws
        if isinstance(ws, TermsInput)
        else read_workspace(ws, measurement=measurement, modifier_settings=modifier_settings)
    )
    if meta is None:
        inputs = [] if isinstance(ws, (Mapping, TermsInput)) else [str(ws)]
        meta = provenance(args={"data": str(data), **_plain(options)}, inputs=inputs)
    if not isinstance(data, str):
        data = np.asarray(data, dtype=np.float64)
    return fit(fi, data=data, meta=meta, **options)


def _plain(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if isinstance(v, (str, int, float, bool, type(None)))}
