# %% [markdown]
# # 09 — The golden JSON and the luminosity
#
# Collision data are recorded in **lumisections** (about 23 s each), numbered within a **run**.
# Not every lumisection is good for physics: a subdetector may have been off. The data-quality
# certification publishes the good ones in the **golden JSON**,
# `{"run": [[first_ls, last_ls], ...]}`. An analysis
#
# 1. keeps only the data events of certified lumisections, and
# 2. normalises its simulation to the **integrated luminosity of exactly those lumisections**
#    (from `brilcalc lumi --byls`, a CSV with the recorded luminosity of each lumisection).
#
# Getting (2) wrong scales every simulated process: the W yield and the data disagree. Your
# generated sample has a golden JSON (`golden.json`) and a brilcalc-style CSV (`lumi.csv`)
# like the real ones. Time: about 25 minutes.

# %%
from analysis.course import course_sample, work_dir

WORK = work_dir()         # your own directory: $WMASS_COURSE_DIR, default course-work/
sample = course_sample()  # your blinded sample: the facility's shared one, or made here once (~15 s)
SAMPLES, DATASETS = sample.path, sample.datasets
print(f"{sample.student}'s sample: {SAMPLES}")

# %%
import json

import awkward as ak
import numpy as np
import uproot

from analysis.datasets import load_datasets

datasets = load_datasets(DATASETS)
data = datasets["data"]
golden = json.loads((SAMPLES / "golden.json").read_text())
print("golden JSON:", golden)
print((SAMPLES / "lumi.csv").read_text().splitlines()[:4])

# %% [markdown]
# Every data file has two trees: `Events` and `LuminosityBlocks` — one entry per lumisection
# the file covers, **whether or not an event of it was written** (a lumisection can be empty
# after a trigger or a skim).

# %%
with uproot.open(data.files[0]) as f:
    ev = f["Events"].arrays(["run", "luminosityBlock"], library="np")
    lb = f["LuminosityBlocks"].arrays(["run", "luminosityBlock"], library="np")
print(f"{len(ev['run'])} events in {len(set(zip(ev['run'], ev['luminosityBlock'])))} lumisections "
      f"with events; the file covers {len(lb['run'])} lumisections")

# %% [markdown]
# ### Exercise 9.1 — the certified events
#
# Build `certified`, a boolean numpy array (one entry per event of `ev`) that is true when the
# event's (run, lumisection) is inside one of the golden JSON's ranges (bounds included;
# note the JSON's keys are strings).

# %% tags=["exercise"]
certified = ...
### BEGIN SOLUTION
certified = np.zeros(len(ev["run"]), dtype=bool)
for run, ranges in golden.items():
    in_run = ev["run"] == int(run)
    for first, last in ranges:
        certified |= in_run & (ev["luminosityBlock"] >= first) & (ev["luminosityBlock"] <= last)
### END SOLUTION

# %% tags=["check"]
from analysis.lumi import golden_mask

_mask = golden_mask(SAMPLES / "golden.json")  # the chain's one golden-JSON mask: what the processors apply
np.testing.assert_array_equal(certified, _mask(ev["run"], ev["luminosityBlock"]))
assert 0.5 < certified.mean() < 1.0, "most, not all, lumisections are certified"
print(f"right: {certified.sum()} of {len(certified)} events certified ({certified.mean():.1%})")

# %% [markdown]
# ### Exercise 9.2 — the integrated luminosity
#
# Compute `lumi_pb`: the sum of the **recorded** luminosity (column `recorded(/pb)` of
# `lumi.csv`; `ls` is written `"N:N"`, comment lines start with `#`) over the lumisections
# that this file covers (`lb`, the `LuminosityBlocks` tree) **and** that are certified.
# Careful: use the lumisections of the file, not only those of its events.

# %% tags=["exercise"]
lumi_pb = ...
### BEGIN SOLUTION
import csv

covered = set(zip(lb["run"].tolist(), lb["luminosityBlock"].tolist()))
lumi_pb = 0.0
with open(SAMPLES / "lumi.csv") as f:
    for row in csv.reader(line for line in f if not line.startswith("#")):
        run, ls = int(row[0].split(":")[0]), int(row[1].split(":")[0])
        good = any(a <= ls <= b for a, b in golden.get(str(run), []))
        if (run, ls) in covered and good:
            lumi_pb += float(row[6])
### END SOLUTION

# %% tags=["check"]
from analysis.lumi import integrated_lumi, read_lumi_blocks

_ref = integrated_lumi(read_lumi_blocks(data.files[0]), SAMPLES / "lumi.csv",
                       SAMPLES / "golden.json")
np.testing.assert_allclose(lumi_pb, _ref, rtol=1e-9)
_events_only = integrated_lumi(set(zip(ev["run"].tolist(), ev["luminosityBlock"].tolist())),
                               SAMPLES / "lumi.csv", SAMPLES / "golden.json")
print(f"right: {lumi_pb:.4f} /pb (the lumisections with events only: {_events_only:.4f} /pb, "
      f"the same here: with this many events no lumisection is empty; "
      f"datasets.yaml says {datasets.lumi_pb:.4f} /pb)")
np.testing.assert_allclose(lumi_pb, datasets.lumi_pb, rtol=1e-6)

# %% [markdown]
# ### Exercise 9.3 — does the normalisation close?
#
# The expected number of selected W events is σ × L × (selected sum of weights / total sum of
# weights). Compute `n_expected`: the yield of **all** simulated processes (not `data`) with at
# least one tight muon with p_T > 26 GeV and |η| < 2.4, normalised to `lumi_pb`; and
# `n_observed`: the number of **certified** data events with the same selection.

# %% tags=["exercise"]
def tight_muon_events(path, weights):
    """Mask of events with a tight muon (pT > 26, |eta| < 2.4), and the events' weights."""
    with uproot.open(path) as f:
        a = f["Events"].arrays(["Muon_pt", "Muon_eta", "Muon_tightId"]
                               + (["genWeight"] if weights else []))
    has = ak.to_numpy(ak.any((a.Muon_pt > 26) & (abs(a.Muon_eta) < 2.4) & a.Muon_tightId, axis=1))
    w = ak.to_numpy(a.genWeight).astype(float) if weights else np.ones(len(has))
    return has, w


n_expected, n_observed = ..., ...
### BEGIN SOLUTION
n_expected = 0.0
for name, ds in datasets.items():
    if ds.is_data:
        continue
    for path in ds.files:
        has, w = tight_muon_events(path, weights=True)
        n_expected += ds.xsec_pb * lumi_pb * w[has].sum() / ds.sumw
has, _ = tight_muon_events(data.files[0], weights=False)
n_observed = int((has & certified).sum())
### END SOLUTION

# %% tags=["check"]
assert n_observed is not ... and n_expected is not ...
_has, _ = tight_muon_events(data.files[0], weights=False)
assert n_observed == int(np.count_nonzero(_has & _mask(ev["run"], ev["luminosityBlock"])))
_ratio = n_observed / n_expected
print(f"observed {n_observed}, expected {n_expected:.0f}: data / simulation = {_ratio:.3f}")
# physics: within a few per cent (the data's efficiencies differ slightly from the simulation's;
# tag-and-probe measures the difference). Try it without `certified`: the data gain the events
# of uncertified lumisections, the luminosity does not.
assert abs(_ratio - 1) < 0.06, "the luminosity normalisation does not close"
print("right: the simulation normalised to the certified luminosity describes the data")

# %% [markdown]
# **Take-away**: mask the data with the golden JSON *and* compute the luminosity of the same
# certified lumisections of the files you processed — including those without a selected
# event. `wmass histmaker` does both (`analysis/lumi.py`), and records the luminosity in
# `hists.h5`. When a job fails on a file, its lumisections must leave the luminosity too
# (`--skip-bad-files` does that).
