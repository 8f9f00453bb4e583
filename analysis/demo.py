"""Run the whole chain on a small generated sample: generate, histmaker, setup-fit, fit, report.

Every step is the same ``wmass`` subcommand a user would type; the demo prints each command
before running it, so it doubles as a worked example. Steps whose code is not built yet are
reported and skipped; a step that fails stops the demo with its error.

``--calibrate``: the chain on *measured* corrections. After the sample, a Z -> mu mu
calibration sample with the same seed (the same detector truth, independent events:
``wmass generate --calibration-sample``, ``--calib-events`` Z events in MC and as many in
data) is generated, ``wmass calibrate`` measures the efficiency scale factors and the
momentum scale on it (with the closure against its truth.json in ``calib.log``), and the
histmaker reads ``calib.json`` instead of the generator's ``corrections.json``.
"""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

__all__ = ["add_arguments", "demo_steps", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo"), help="output directory")
    parser.add_argument(
        "--events", type=int, default=200_000, help="MC events to generate (all processes)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the generator")
    parser.add_argument(
        "--mw", type=float, default=80.429, help="true W mass of the pseudo-data, GeV"
    )
    parser.add_argument(
        "--executor",
        choices=["auto", "dask", "iterative"],
        default="auto",
        help="histmaker executor (auto: one process for the demo's size on a laptop; "
        "dask: the embedded local Dask cluster)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local Dask worker processes (default: one per core), forked from one warm process "
        "(analysis.warmstart); implies the Dask executor",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="measure the corrections (wmass calibrate on a Z calibration sample) and use them",
    )
    parser.add_argument(
        "--calib-events",
        type=lambda s: int(float(s)),
        default=1_000_000,
        help="Z -> mu mu MC events of the calibration sample (as many in data)",
    )


def demo_steps(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """The chain as ``(subcommand, argv)`` pairs, in order."""
    out: Path = args.out
    samples = out / "samples"
    calibrate = getattr(args, "calibrate", False)
    calib_steps: list[tuple[str, list[str]]] = []
    corrections: list[str] = []
    if calibrate:
        calib_samples = out / "calib_samples"
        calib = out / "calib.json"
        corrections = ["--corrections", str(calib)]
        calib_steps = [
            (
                "generate",
                [
                    "generate",
                    "--out",
                    str(calib_samples),
                    "--calibration-sample",
                    "--events",
                    str(getattr(args, "calib_events", 1_000_000)),
                    "--seed",
                    str(args.seed),
                ],
            ),
            (
                "calibrate",
                [
                    "calibrate",
                    "--datasets",
                    str(calib_samples / "datasets.yaml"),
                    "--out",
                    str(calib),
                    "--corrections",
                    str(samples / "corrections.json"),
                    "--truth",
                    str(calib_samples / "truth.json"),
                ],
            ),
        ]
    return [
        (
            "generate",
            [
                "generate",
                "--out",
                str(samples),
                "--events",
                str(args.events),
                "--seed",
                str(args.seed),
                "--mw",
                str(args.mw),
            ],
        ),
        *calib_steps,
        (
            "histmaker",
            [
                "histmaker",
                "--analysis",
                "wmass",
                "--datasets",
                str(samples / "datasets.yaml"),
                "--out",
                str(out / "hists.h5"),
                "--executor",
                args.executor,
                *([] if args.workers is None else ["--workers", str(args.workers)]),
                *corrections,
            ],
        ),
        ("setup-fit", ["setup-fit", str(out / "hists.h5"), "--out", str(out / "fitinput.h5")]),
        (
            "fit",
            [
                "fit",
                str(out / "fitinput.h5"),
                "--out",
                str(out / "fitresult.h5"),
                "--impacts",
                "--global-impacts",
            ],
        ),
        (
            "report",
            [
                "report",
                str(out / "fitresult.h5"),
                str(out / "hists.h5"),
                "--out",
                str(out / "site"),
            ],
        ),
    ]


def main(args: argparse.Namespace) -> int:
    from analysis import cli

    args.out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    skipped: list[str] = []
    for name, argv in demo_steps(args):
        if cli.load_command(name) is None:
            print(f"[demo] skip   wmass {name}: not built yet")
            skipped.append(name)
            continue
        print(f"[demo] run    wmass {shlex.join(argv)}", flush=True)
        start = time.perf_counter()
        rc = cli.main(argv)
        if rc != 0:
            print(f"[demo] wmass {name} failed with exit code {rc}")
            return rc
        print(f"[demo] done   wmass {name} in {time.perf_counter() - start:.1f} s")
        written.append(argv[argv.index("--out") + 1])
    print("\n[demo] wrote:")
    for path in written:
        print(f"  {path}")
    fitresult = args.out / "fitresult.h5"
    if fitresult.exists():
        from fit import FitResult
        from fit.result import rounded

        mw = FitResult.read(fitresult).pois.get("mW")
        if mw is not None:
            pull = (mw["value"] - 1000 * args.mw) / mw["error"]
            value, error = rounded(mw["value"], mw["error"])
            print(
                f"[demo] measured mW = {value} +- {error} MeV"
                f" (truth {1000 * args.mw:.0f} MeV, pull {pull:+.1f});"
                " one sample proves nothing: the ensembles are in docs/validation.md"
            )
    if getattr(args, "calibrate", False):
        print(
            f"[demo] with measured corrections: {args.out / 'calib.json'} "
            f"(closure against the truth in {args.out / 'calib.log'})"
        )
    index = args.out / "site" / "index.html"
    if index.exists():
        print(f"[demo] browse the report: {index.resolve().as_uri()}")
    if skipped:
        print(f"[demo] not built yet: {', '.join(skipped)}")
    return 0
