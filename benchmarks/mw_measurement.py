"""The W-mass measurement on a large generated sample: m_W, its total uncertainty and the
breakdown by group of systematic uncertainties (global impacts), with the time of each step.

    python benchmarks/mw_measurement.py --events 5000000 --mw 80.429 --workdir /tmp/mw

Runs ``wmass generate`` (skipped when ``WORKDIR/samples/datasets.yaml`` exists), ``wmass
histmaker`` with all variations, ``wmass setup-fit`` and ``wmass fit --global-impacts``, then
prints the result. The global impacts add up in quadrature to the total uncertainty.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import h5py

# run as a script, benchmarks/ is first on sys.path and benchmarks/fit.py would shadow the
# fit package: put the project root there instead
_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
sys.path.insert(0, str(_here.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="MC events to generate")
    parser.add_argument("--mw", type=float, default=80.429, help="true W mass of the data, GeV")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("mw_measurement"))
    parser.add_argument("--executor", choices=["dask", "iterative"], default="iterative")
    parser.add_argument(
        "--reuse-hists", action="store_true", help="keep WORKDIR/hists.h5 if it exists"
    )
    args = parser.parse_args()

    from analysis.cli import main as wmass

    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    samples = work / "samples"
    hists, fitinput, fitresult = work / "hists.h5", work / "fitinput.h5", work / "fitresult.h5"
    steps = []
    if not (samples / "datasets.yaml").exists():
        steps.append(
            (
                "generate",
                ["generate", "--out", samples, "--events", args.events, "--mw", args.mw]
                + ["--seed", args.seed],
            )
        )
    if not (args.reuse_hists and hists.exists()):
        steps.append(
            (
                "histmaker",
                ["histmaker", "--analysis", "wmass", "--datasets", samples / "datasets.yaml"]
                + ["--out", hists, "--executor", args.executor, "--quiet"],
            )
        )
    steps += [
        ("setup-fit", ["setup-fit", hists, "--out", fitinput]),
        ("fit", ["fit", fitinput, "--out", fitresult, "--global-impacts"]),
    ]
    timings = {}
    for name, argv in steps:
        start = time.perf_counter()
        if wmass([str(a) for a in argv]) != 0:
            print(f"step {name} failed")
            return 1
        timings[name] = time.perf_counter() - start

    from fit import describe

    with h5py.File(fitresult) as f:
        result = describe(f)
        impacts = {k: float(v) for k, v in f["global_impacts/mW"].attrs.items()}
    mw = result["pois"]["mW"]
    truth = None
    truth_file = samples / "truth.json"
    if truth_file.exists():
        import json

        truth = 1000 * json.loads(truth_file.read_text())["mw_data_gev"]
    print()
    print(f"m_W = {mw['value']:.1f} +- {mw['error']:.1f} MeV", end="")
    print(
        f"   (generated: {truth:.1f} MeV, pull {(mw['value'] - truth) / mw['error']:+.2f})"
        if truth
        else ""
    )
    print(
        f"status {result['status']}, {result['n_parameters']} parameters, "
        f"gof chi2/ndf = {result['gof']['chi2']:.1f}/{result['gof']['ndf']}"
    )
    print()
    print(f"{'global impact on m_W':<32}{'MeV':>8}")
    total = impacts.pop("total", mw["error"])
    for group, value in sorted(impacts.items(), key=lambda kv: -kv[1]):
        print(f"{group:<32}{value:>8.1f}")
    print(
        f"{'total':<32}{total:>8.1f}   (quadrature sum {sum(v * v for v in impacts.values()) ** 0.5:.1f})"
    )
    print()
    print(" | ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
