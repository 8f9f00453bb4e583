"""``wmass calibrate``: measure the muon efficiency scale factors (tag and probe) and the momentum
scale (Z mass peak) from the data and the Z -> mu mu simulation, and write them as a
correctionlib payload that replaces the generator's ``corrections.json``.

    wmass calibrate --datasets samples/datasets.yaml --out calib.json
    wmass calibrate --datasets samples/datasets.yaml --out calib.json \\
        --truth samples/truth.json --plot closure.png          # closure against the truth
    wmass histmaker --analysis wmass --datasets samples/datasets.yaml \\
        --corrections calib.json --out hists.h5

Writes ``calib.json`` (the CorrectionSet), ``calib.meta.json`` (provenance and every measured
number) and ``calib.log`` (the summary), each atomically. Method: docs/calibration.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n")[0]
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "\n\n".join(__doc__.split("\n\n")[1:])
    parser.add_argument("--datasets", type=Path, required=True, help="the datasets.yaml")
    parser.add_argument("--out", type=Path, required=True, help="the payload to write (.json)")
    parser.add_argument(
        "--data", nargs="+", default=None, help="data datasets (default: all is_data ones)"
    )
    parser.add_argument(
        "--mc", nargs="+", default=None, help="Z -> mu mu MC datasets (default: process Zmumu)"
    )
    parser.add_argument(
        "--corrections",
        type=Path,
        default=None,
        help="payload whose pileup and prefiring are copied "
        "(default: corrections.json beside the datasets.yaml)",
    )
    parser.add_argument(
        "--degree", type=int, default=2, help="polynomial degree of the SF smoothing in pT"
    )
    parser.add_argument(
        "--no-systematics",
        action="store_true",
        help="statistical eigen-variations only: skip the tag-and-probe alternative fits "
        "(signal and background shape, mass window, tag selection; syst_up/down)",
    )
    parser.add_argument(
        "--truth", type=Path, default=None, help="truth.json: also check the closure"
    )
    parser.add_argument(
        "--plot", type=Path, default=None, help="closure plot (with --truth): PNG or PDF"
    )


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="wmass calibrate")
    add_arguments(parser)
    return parser.parse_args(list(argv))


def main(args: argparse.Namespace | Sequence[str] | None = None) -> int:
    """Run the calibration; ``args`` as parsed by ``wmass`` or an argv list."""
    from analysis.calibrate.calibration import calibrate
    from analysis.calibrate.closure_check import closure
    from analysis.errors import ConfigError
    from fit.provenance import provenance

    if not isinstance(args, argparse.Namespace):
        args = _parse(sys.argv[1:] if args is None else args)
    if args.plot is not None and args.truth is None:
        raise ConfigError("--plot", "needs --truth")
    if args.truth is not None and not args.truth.is_file():
        raise ConfigError("--truth", f"no such file {args.truth}")
    start = time.perf_counter()
    cal = calibrate(
        args.datasets,
        data=args.data,
        mc=args.mc,
        corrections=args.corrections,
        degree=args.degree,
        systematics=not getattr(args, "no_systematics", False),
    )
    extra = ""
    if args.truth is not None:
        result = closure(cal, args.truth)
        extra = f"closure against {args.truth}:\n{result.table()}\n"
        if args.plot is not None:
            from analysis.calibrate.plots import plot_closure

            plot_closure(result, args.plot)
    record = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    record.pop("func", None)
    prov = provenance(args=record, inputs=cal.inputs, command="wmass calibrate " + _argv(args))
    paths = cal.write(args.out, prov, extra)
    sys.stdout.write(cal.log() + extra)
    print(
        f"wrote {paths['payload']}, {paths['meta'].name} and {paths['log'].name} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0


def _argv(args: argparse.Namespace) -> str:
    parts = [f"--datasets {args.datasets}", f"--out {args.out}"]
    for key in ("data", "mc"):
        if getattr(args, key):
            parts.append(f"--{key} " + " ".join(getattr(args, key)))
    for key in ("corrections", "truth", "plot"):
        if getattr(args, key) is not None:
            parts.append(f"--{key} {getattr(args, key)}")
    if args.degree != 2:
        parts.append(f"--degree {args.degree}")
    if getattr(args, "no_systematics", False):
        parts.append("--no-systematics")
    return " ".join(parts)
