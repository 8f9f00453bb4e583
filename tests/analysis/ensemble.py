"""Small full-chain pseudo-experiments for the tests: generate -> histmaker -> setup-fit -> fit,
in-process, one per seed (the benchmark of record is benchmarks/mw_bias.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

#: the variations filled: the mass (POI) and one experimental source, to keep the test fast
VARIATIONS = ("massWeight", "pileup")


def pseudo_experiment(seed: int, mw_gev: float, events: int) -> dict[str, Any]:
    """One pseudo-experiment: the fitted mW (MeV), its error and the nonprompt closure."""
    from analysis.generate import generate_samples
    from analysis.histmaker import histmaker
    from analysis.setup_fit import setup_fit
    from fit import fit

    with tempfile.TemporaryDirectory(prefix=f"wmass-pe{seed}-") as tmp:
        work = Path(tmp)
        yaml_path = generate_samples(work / "samples", events=events, seed=seed, mw=mw_gev)
        hists = work / "hists.h5"
        histmaker(
            "wmass",
            yaml_path,
            hists,
            executor="iterative",
            variations=VARIATIONS,
            progress=False,
            checkpoint_interval=0,
        )
        fit_input, _ = setup_fit([hists], work / "fitinput.h5")
        result = fit(fit_input)
        closure = {}
        setup_log = (work / "fitinput.log").read_text()
        for line in setup_log.splitlines():
            if "nonprompt closure vs QCD simulation in" in line:
                axis = line.split(" in ")[1].split(":")[0]
                chi2, ndf = line.split("=")[1].split("/")
                closure[axis] = (float(chi2), float(ndf))
    mw = result.pois["mW"]
    return {
        "seed": seed,
        "truth": 1000.0 * mw_gev,
        "value": mw["value"],
        "error": mw["error"],
        "status": result.status,
        "closure": closure,
    }
