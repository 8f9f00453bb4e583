# %% [markdown]
# # 11 — Tag and probe, and correctionlib
#
# The simulation's muon efficiencies are not exactly the data's. **Tag and probe** measures an
# efficiency in data without knowing which muons are real: in Z → μμ events, one muon (the
# **tag**) passes a tight selection and the trigger; the other (the **probe**) is selected
# only loosely, and the Z mass window guarantees it is a real muon. The efficiency is the
# fraction of probes that pass the selection under study. Measured the same way in data and in
# simulation, the ratio is the **scale factor** SF = ε_data / ε_MC, which weights simulated
# events.
#
# CMS distributes scale factors as **correctionlib** JSON payloads. Your sample's
# `corrections.json` has one (`muon_idip_sf`, the tight ID + impact parameter efficiency),
# made from the generator's truth: does your measurement agree with it? Time: about 30 minutes.

# %%
from analysis.course import course_sample, work_dir

WORK = work_dir()         # your own directory: $WMASS_COURSE_DIR, default course-work/
sample = course_sample()  # your blinded sample: the facility's shared one, or made here once (~15 s)
SAMPLES, DATASETS = sample.path, sample.datasets
print(f"{sample.student}'s sample: {SAMPLES}")

# %%
import awkward as ak
import numpy as np
import uproot

from analysis.datasets import load_datasets

datasets = load_datasets(DATASETS)
FIELDS = ["pt", "eta", "phi", "charge", "tightId", "pfRelIso04_all"]


def probes(name):
    """Tag-and-probe pairs of events with exactly two muons (pT > 15, |eta| < 2.4) and the
    trigger: tag = tight, isolated, pT > 26; probe = the other muon, pT > 26; opposite charge,
    81 < m < 101 GeV. Each muon of a pair is tried as the tag."""
    ds = datasets[name]
    with uproot.open(ds.files[0]) as f:
        a = f["Events"].arrays([f"Muon_{k}" for k in FIELDS] + ["HLT_IsoMu24"]
                               + ([] if ds.is_data else ["genWeight"]))
    acc = (a.Muon_pt > 15) & (abs(a.Muon_eta) < 2.4)
    keep = (ak.sum(acc, axis=1) == 2) & a.HLT_IsoMu24
    a, acc = a[keep], acc[keep]
    m = {k: ak.to_numpy(ak.fill_none(ak.pad_none(a[f"Muon_{k}"][acc], 2, clip=True), 0))
         for k in FIELDS}                                          # each [pairs, 2]
    w = np.ones(len(a)) if ds.is_data else ak.to_numpy(a.genWeight).astype(float)
    pt, eta, phi = (m[k].astype(float) for k in ("pt", "eta", "phi"))
    px, py = (pt * np.cos(phi)).sum(1), (pt * np.sin(phi)).sum(1)
    pz, e = (pt * np.sinh(eta)).sum(1), (pt * np.cosh(eta)).sum(1)
    mass = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0))
    out = {"pt": [], "eta": [], "passed": [], "w": []}
    for t, p in ((0, 1), (1, 0)):
        sel = ((m["charge"][:, 0] * m["charge"][:, 1] < 0) & (m["tightId"][:, t] == 1)
               & (m["pfRelIso04_all"][:, t] < 0.15) & (pt[:, t] > 26) & (pt[:, p] > 26)
               & (mass > 81) & (mass < 101))
        out["pt"].append(pt[sel, p])
        out["eta"].append(eta[sel, p])
        out["passed"].append(m["tightId"][sel, p] == 1)
        out["w"].append(w[sel])
    return {k: np.concatenate(v) for k, v in out.items()}


P_DATA, P_MC = probes("data"), probes("zmumu")
print(f"{len(P_DATA['pt'])} probes in data, {len(P_MC['pt'])} in the Z simulation")

# %% [markdown]
# ### Exercise 11.1 — efficiencies and the scale factor
#
# Compute the tight-ID efficiency of the probes in data (`eff_data`, a plain fraction) and in
# simulation (`eff_mc`, weighted by the generator weight `P_MC["w"]`), the scale factor
# `sf = eff_data / eff_mc`, and its statistical uncertainty `sf_err` from the data alone
# (binomial: `sqrt(eff (1 - eff) / N) / eff_mc`; the simulation has ten times more probes).

# %% tags=["exercise"]
eff_data, eff_mc, sf, sf_err = ..., ..., ..., ...
### BEGIN SOLUTION
eff_data = P_DATA["passed"].mean()
eff_mc = np.sum(P_MC["w"] * P_MC["passed"]) / np.sum(P_MC["w"])
sf = eff_data / eff_mc
sf_err = np.sqrt(eff_data * (1 - eff_data) / len(P_DATA["passed"])) / eff_mc
### END SOLUTION

# %% tags=["check"]
_n = _k = 0
for _p in P_DATA["passed"]:  # one probe at a time
    _n, _k = _n + 1, _k + int(_p)
np.testing.assert_allclose(eff_data, _k / _n, rtol=1e-12)
np.testing.assert_allclose(eff_mc, np.average(P_MC["passed"], weights=P_MC["w"]), rtol=1e-12)
np.testing.assert_allclose(sf, eff_data / eff_mc, rtol=1e-12)
np.testing.assert_allclose(sf_err, np.sqrt(_k * (_n - _k) / _n**3) / eff_mc, rtol=1e-9)
assert 0.8 < eff_data <= 1 and 0.8 < eff_mc <= 1, "the tight ID is efficient for real muons"
print(f"right: efficiency {eff_data:.4f} (data), {eff_mc:.4f} (simulation): "
      f"SF = {sf:.4f} ± {sf_err:.4f}")

# %% [markdown]
# ### Exercise 11.2 — the correctionlib payload
#
# Open `corrections.json` with `correctionlib.CorrectionSet.from_file`, and evaluate the
# `muon_idip_sf` correction (inputs: `eta`, `pt`, and the variation `"nominal"`; numpy arrays
# are accepted) at every **simulated** probe. Store in `sf_payload` the average scale factor
# the payload predicts for your probe sample, weighted like your measurement (by the generator
# weight times pass, since the SF multiplies the weight of the events whose muon passed).

# %% tags=["exercise"]
sf_payload = ...
### BEGIN SOLUTION
import correctionlib

cset = correctionlib.CorrectionSet.from_file(str(SAMPLES / "corrections.json"))
per_probe = cset["muon_idip_sf"].evaluate(P_MC["eta"], P_MC["pt"], "nominal")
sf_payload = np.average(per_probe, weights=P_MC["w"] * P_MC["passed"])
### END SOLUTION

# %% tags=["check"]
import correctionlib

_c = correctionlib.CorrectionSet.from_file(str(SAMPLES / "corrections.json"))["muon_idip_sf"]
_num = _den = 0.0
for _e, _p, _w, _ok in zip(P_MC["eta"], P_MC["pt"], P_MC["w"], P_MC["passed"]):
    if _ok:  # one probe at a time, scalar evaluations
        _num += _w * _c.evaluate(float(_e), float(_p), "nominal")
        _den += _w
assert sf_payload is not ... and 0.8 < sf_payload < 1.2
np.testing.assert_allclose(sf_payload, _num / _den, rtol=1e-9)
# physics: the measurement and the payload agree within the measurement's uncertainty
_pull = (sf - sf_payload) / sf_err
print(f"measured SF {sf:.4f} ± {sf_err:.4f}, payload {sf_payload:.4f}: pull {_pull:+.2f}")
assert abs(_pull) < 3, "tag and probe should reproduce the scale factor"
print("right: tag and probe measures what the simulation gets wrong")

# %% [markdown]
# **Take-away**: the probe is selected without the cut under study, and the Z mass window
# replaces the truth. The analysis measures the scale factors in bins of η and p_T, fits the
# Z peak in pass and fail categories to subtract the background, smooths them in p_T and
# writes them with their statistical eigen-variations as a correctionlib payload:
# `wmass calibrate` (`analysis/calibrate/`, `docs/calibration.md`), whose output
# `wmass histmaker --corrections` reads in place of the generator's.
