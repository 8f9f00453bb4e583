"""Small samples for the histmaker tests: synthetic NanoAOD-like files (``tests/processors/
synthetic.py``), a datasets.yaml around them, a lumi CSV and a golden JSON.

Imported as ``tests.analysis.h3_samples`` (the repository root is on the test path).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import uproot
import yaml

from tests.corrections import truth_factory as truth_factory
from tests.processors import synthetic as synthetic

TESTS = Path(__file__).resolve().parent.parent
NANO = TESTS / "data" / "nanoaod"


write_sample = synthetic.write_sample


def write_lumi_csv(path: Path, rows: list[tuple[int, int, float]]) -> Path:
    """A brilcalc-style CSV with (run, ls, recorded /ub) rows (delivered = 1.1 x recorded)."""
    lines = [
        "#Data tag : 23v1 , Norm tag: None",
        "#run:fill,ls,time,beamstatus,E(GeV),delivered(/ub),recorded(/ub),avgpu,source",
    ]
    for run, ls, rec in rows:
        lines.append(
            f"{run}:6000,{ls}:{ls},07/01/17 00:00:00,STABLE BEAMS,6500,{rec * 1.1:.6f},"
            f"{rec:.6f},30.0,HFOC"
        )
    lines.append("#Summary:")
    lines.append("#nfill,nrun,nls,ncms,totdelivered(/ub),totrecorded(/ub)")
    lines.append(f"#1,1,{len(rows)},{len(rows)},0,0")
    path.write_text("\n".join(lines) + "\n")
    return path


def make_fileset(
    tmp: Path, *, mc_files: int = 2, mc_events: int = 600, data_events: int = 700, seed: int = 11
) -> Path:
    """``tmp/datasets.yaml`` with an MC dataset of ``mc_files`` files and one data file
    (lumisections 1..; the golden JSON keeps ls 1 of run 1 only, the CSV has ls 1..3)."""
    (tmp / "wmunu").mkdir(parents=True, exist_ok=True)
    files = []
    for k in range(mc_files):
        write_sample(tmp / "wmunu" / f"nano_{k}.root", mc_events, seed=seed + k)
        files.append(f"wmunu/nano_{k}.root")
    (tmp / "data").mkdir(exist_ok=True)
    write_sample(tmp / "data" / "nano_0.root", data_events, seed=seed + 100, is_data=True)
    write_lumi_csv(tmp / "lumi.csv", [(1, 1, 1000.0), (1, 2, 2000.0), (1, 3, 4000.0)])
    (tmp / "golden.json").write_text(json.dumps({"1": [[1, 1]]}))
    sumw = sum(
        float(
            uproot.open(tmp / f)["Events"]["genWeight"].array(library="np").astype(np.float64).sum()
        )
        for f in files
    )
    doc = {
        "lumi_pb": 1.0,
        "datasets": {
            "wmunu": {
                "process": "Wmunu",
                "is_data": False,
                "xsec_pb": 20508.9,
                "sumw": sumw,
                "nevents": mc_files * mc_events,
                "files": files,
            },
            "data": {
                "process": "Data",
                "is_data": True,
                "xsec_pb": None,
                "files": ["data/nano_0.root"],
                "lumi_csv": "lumi.csv",
                "golden_json": "golden.json",
            },
        },
    }
    path = tmp / "datasets.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def corrections_for(tmp: Path) -> Path:
    from corrections import build_corrections

    truth_factory.write_tiny_truth(tmp / "truth.json")
    return build_corrections(tmp / "truth.json", tmp / "corrections.json")
