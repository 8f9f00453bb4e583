# %% [markdown]
# # 10 — Pileup reweighting
#
# Every bunch crossing at the LHC has tens of simultaneous proton-proton collisions besides the
# interesting one: **pileup**. It adds particles to the isolation cone and the hadronic recoil
# (notebooks 07 and 08), so the simulation must have the same pileup as the data. Simulation is
# produced before the data are taken, with a guessed distribution of the number of interactions
# (`Pileup_nTrueInt`, the mean number of interactions of the crossing); afterwards each
# simulated event is **reweighted** by
#
# w(n) = P_data(n) / P_MC(n),
#
# with P_data the distribution of the data (in CMS computed by `pileupCalc` from the
# luminosity per lumisection of the golden JSON and the inelastic cross section) and P_MC the
# simulation's. Your sample's `truth.json` holds the data profile, and its ±1σ variations (the
# inelastic cross section ±4.6 %), as `pileupCalc` would give them. Time: about 25 minutes.

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
profiles = json.loads((SAMPLES / "truth.json").read_text())["pileup"]
EDGES = np.asarray(profiles["edges"])                      # 0, 1, ..., 100
P_DATA = np.asarray(profiles["data"]) / np.sum(profiles["data"])


def z_events(name):
    """Z -> mu mu candidates: two tight muons with pT > 20 GeV and |eta| < 2.4."""
    ds = datasets[name]
    extra = [] if ds.is_data else ["Pileup_nTrueInt", "genWeight"]
    with uproot.open(ds.files[0]) as f:
        a = f["Events"].arrays(["Muon_pt", "Muon_eta", "Muon_tightId", "PV_npvs", *extra])
    good = (a.Muon_pt > 20) & (abs(a.Muon_eta) < 2.4) & a.Muon_tightId
    a = a[ak.sum(good, axis=1) == 2]
    out = {"npv": ak.to_numpy(a.PV_npvs).astype(float)}
    if not ds.is_data:
        out["ntrue"] = ak.to_numpy(a.Pileup_nTrueInt).astype(float)
        out["w"] = ak.to_numpy(a.genWeight).astype(float)
    return out


mc, data = z_events("zmumu"), z_events("data")
print(f"{len(mc['npv'])} simulated and {len(data['npv'])} data Z candidates")
print(f"mean number of vertices: data {data['npv'].mean():.2f}, "
      f"simulation {np.average(mc['npv'], weights=mc['w']):.2f}")

# %% [markdown]
# ### Exercise 10.1 — the pileup weights
#
# 1. Histogram the simulation's `Pileup_nTrueInt` (`mc["ntrue"]`, weighted by `mc["w"]`) in
#    the bins `EDGES` and normalise it to 1: that is P_MC.
# 2. Write `pu_weight(ntrue, p_data)`: for an array of `nTrueInt` values, the weight
#    `p_data[b] / P_MC[b]` of the bin b each falls in (0 where P_MC[b] is 0).
# 3. Store the weights of the simulated Z events, `w_pu = pu_weight(mc["ntrue"], P_DATA)`.

# %% tags=["exercise"]
w_pu = ...
### BEGIN SOLUTION
p_mc, _ = np.histogram(mc["ntrue"], bins=EDGES, weights=mc["w"])
p_mc = p_mc / p_mc.sum()


def pu_weight(ntrue, p_data):
    b = np.clip(np.digitize(ntrue, EDGES) - 1, 0, len(EDGES) - 2)
    ratio = np.divide(p_data, p_mc, out=np.zeros(len(p_mc)), where=p_mc > 0)
    return ratio[b]


w_pu = pu_weight(mc["ntrue"], P_DATA)
### END SOLUTION

# %% tags=["check"]
assert np.shape(w_pu) == np.shape(mc["ntrue"]), "one weight per simulated event"
# the reweighted simulation has the data's profile, bin by bin (where it has events at all)
_h, _ = np.histogram(mc["ntrue"], bins=EDGES, weights=mc["w"] * w_pu)
_covered = np.histogram(mc["ntrue"], bins=EDGES)[0] > 0
np.testing.assert_allclose(_h / _h.sum(), P_DATA * _covered / P_DATA[_covered].sum(), atol=1e-9)
# physics: the number of reconstructed vertices, which the weights never saw, now agrees
_before = np.average(mc["npv"], weights=mc["w"])
_after = np.average(mc["npv"], weights=mc["w"] * w_pu)
_data = data["npv"].mean()
_err = data["npv"].std() / np.sqrt(len(data["npv"]))
print(f"mean PV_npvs: data {_data:.2f} ± {_err:.2f}, simulation {_before:.2f} -> {_after:.2f}")
assert abs(_after - _data) < abs(_before - _data), "the reweighting moves the simulation to data"
assert abs(_after - _data) < 5 * _err + 0.1, "after reweighting, data and simulation agree"
print("right: the simulation now has the data's pileup")

# %% [markdown]
# ### Exercise 10.2 — the uncertainty
#
# The data profile depends on the inelastic cross section (±4.6 %). Compute the weights for the
# `data_up` and `data_down` profiles of `profiles` (normalise them as `P_DATA`), and store
# the mean number of reconstructed vertices of the reweighted simulation for down, nominal and
# up in `npv_down, npv_nominal, npv_up`.

# %% tags=["exercise"]
npv_down, npv_nominal, npv_up = ..., ..., ...
### BEGIN SOLUTION
def mean_npv(profile):
    p = np.asarray(profile) / np.sum(profile)
    return np.average(mc["npv"], weights=mc["w"] * pu_weight(mc["ntrue"], p))


npv_down, npv_nominal, npv_up = (mean_npv(profiles[k]) for k in ("data_down", "data", "data_up"))
### END SOLUTION

# %% tags=["check"]
np.testing.assert_allclose(npv_nominal, np.average(mc["npv"], weights=mc["w"] * w_pu), rtol=1e-9)
print(f"mean PV_npvs: down {npv_down:.2f}, nominal {npv_nominal:.2f}, up {npv_up:.2f}")
# physics: a larger inelastic cross section means more interactions per crossing
assert npv_down < npv_nominal < npv_up
assert 0.005 < (npv_up - npv_down) / npv_nominal < 0.3, "a few per cent, like the cross section"
print("right: the pileup uncertainty is one nuisance parameter of the fit (up/down weights)")

# %% [markdown]
# **Take-away**: the weights are a function of the *true* number of interactions, which the
# simulation knows; the check is on the *reconstructed* vertices, which it does not use. The
# analysis reads the weights from the `pileup` correction of `corrections.json`
# (correctionlib: `nominal`, `up`, `down`), and every systematic variation becomes a weight
# column of the tensor fill (notebook 03).
