"""Pieces the benchmarks and the tests share: the ``wmass histmaker`` command line, pyhf
workspace modifiers, and one benchmark configuration run in a fresh interpreter.

Imported as ``benchmarks._common`` (the repository root on ``sys.path``: the benchmark scripts
put it there, pytest's ``pythonpath`` does for the tests). Standard library only, so that a
benchmark run against an older checkout (``PYTHONPATH``) imports nothing of ours from here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

# -- the histmaker command line ------------------------------------------------------------------


def histmaker_argv(
    datasets: str | Path,
    out: str | Path,
    *,
    chunksize: int | None = None,
    corrections: str | Path | None = None,
    variations: Sequence[str] = (),
    executor: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The arguments of ``wmass histmaker`` (after the program name), without a progress bar:
    ``variations`` the ones to fill (none given: the nominal only), ``extra`` appended."""
    argv = ["histmaker", "--datasets", str(datasets), "--out", str(out)]
    if executor is not None:
        argv += ["--executor", executor]
    if chunksize is not None:
        argv += ["--chunksize", str(chunksize)]
    if corrections is not None:
        argv += ["--corrections", str(corrections)]
    return [*argv, "--variations", *variations, "--quiet", *extra]


# -- pyhf workspaces ------------------------------------------------------------------------------


def pyhf_sample(name: str, data: Sequence[float], modifiers: list[dict]) -> dict[str, Any]:
    """A pyhf sample: its nominal yields as plain floats."""
    return {"name": name, "data": [float(v) for v in data], "modifiers": modifiers}


def modifier(name: str, kind: str, data: Any = None) -> dict[str, Any]:
    """A pyhf modifier; ``data`` as the schema wants it for ``kind`` (None for normfactor, lumi,
    shapefactor; the absolute uncertainties per bin for staterror and shapesys)."""
    if kind in ("staterror", "shapesys"):
        data = list(data)
    return {"name": name, "type": kind, "data": data}


def normsys(name: str, hi: float, lo: float) -> dict[str, Any]:
    return modifier(name, "normsys", {"hi": hi, "lo": lo})


def histosys(name: str, hi: Sequence[float], lo: Sequence[float]) -> dict[str, Any]:
    """A histosys from the up and down templates (absolute yields)."""
    return modifier(name, "histosys", {"hi_data": list(hi), "lo_data": list(lo)})


# -- one configuration in a fresh interpreter -----------------------------------------------------


def run_one_or_parse(
    parser: argparse.ArgumentParser, one: Callable[[dict], dict]
) -> argparse.Namespace | None:
    """Parse the command line; with the hidden ``--one CFG`` (what :func:`measure` passes), run
    ``one(cfg)`` here, print its JSON and return None."""
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(json.loads(args.one))))
        return None
    return args


#: the environment variable through which :func:`measure` tells its child when it was launched
LAUNCHED = "WMASS_BENCHMARK_LAUNCHED"


def launched() -> float:
    """When this process was launched, in seconds since the epoch: the time :func:`measure` took
    just before it started this interpreter, or now where nothing launched it so.

    ``psutil.Process().create_time()`` is not precise enough for a fixed cost of a few seconds:
    psutil adds the process's start in clock ticks to the boot time, which Linux gives in whole
    seconds (``btime`` in ``/proc/stat``). On this machine it put the start 0.6 s before the
    interpreter's first line, which takes 0.03 s from a shell; the offset is the same for every
    process of one boot and changes with the boot.

    >>> launched() <= time.time()
    True
    """
    return float(os.environ.get(LAUNCHED, time.time()))


def cpu_ticks(stat: str = "/proc/stat") -> list[int] | None:
    """The machine's CPU time so far, all cores together, in clock ticks per state (user, nice,
    system, idle, iowait, irq, softirq, steal, ...: the ``cpu`` line of ``/proc/stat``); None
    where there is no such file (not Linux).

    >>> ticks = cpu_ticks()
    >>> ticks is None or len(ticks) >= 8
    True
    """
    try:
        with open(stat) as f:
            return [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def host_share(before: list[int] | None, after: list[int] | None) -> dict[str, float]:
    """What the machine's cores did between two :func:`cpu_ticks`, as fractions of all their
    time: ``busy`` (neither idle nor waiting for I/O) and ``steal`` (taken by the hypervisor
    for other guests: time a virtual machine's busy thread stood still). Empty where either
    reading is missing.

    >>> host_share([10, 0, 0, 80, 0, 0, 0, 10], [60, 0, 0, 120, 0, 0, 0, 20])
    {'busy': 0.6, 'steal': 0.1}
    """
    if not before or not after:
        return {}
    delta = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(delta[:8])
    if total <= 0 or len(delta) < 8:
        return {}
    return {"busy": 1.0 - (delta[3] + delta[4]) / total, "steal": delta[7] / total}


def measure(script: str, cfg: dict, env: Mapping[str, str] | None = None) -> dict:
    """``script --one CFG`` in a new interpreter: the JSON of its last line of output, or
    ``{"error": last line of stderr}`` if it failed. The child finds its launch time with
    :func:`launched`. The row also gets ``host``: :func:`host_share` over the child's run (how
    busy the machine was, and how much of it the hypervisor took)."""
    child = dict(os.environ if env is None else env)
    child[LAUNCHED] = repr(time.time())
    before = cpu_ticks()
    out = subprocess.run(
        [sys.executable, script, "--one", json.dumps(cfg)],
        capture_output=True,
        text=True,
        check=False,
        env=child,
    )
    host = host_share(before, cpu_ticks())
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1], "host": host}
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "host": host}
