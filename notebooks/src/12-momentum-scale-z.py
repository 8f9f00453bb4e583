# %% [markdown]
# # 12 — The muon momentum scale from the Z
#
# m_W is measured from the muon p_T spectrum (its Jacobian peak at about m_W/2), so the muon
# momentum **scale** enters one to one: a relative bias δ of every p_T moves the fitted m_W by
# about δ · m_W — a scale off by 10⁻⁴ is 8 MeV, the size of the whole measurement's
# uncertainty. The scale is calibrated on the Z, whose mass is known to 2 MeV: the dimuon mass
# peak in data against the simulation's. Time: about 25 minutes.
#
# (The W-like analysis, `wmass histmaker --analysis wlike`, goes further: it fits the Z mass
# from one muon's p_T with the other treated as a neutrino — the W-mass method, tested where
# the answer is known.)

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
FIELDS = ["pt", "eta", "phi", "charge", "tightId"]


def dimuons(name):
    """Opposite-charge pairs of events with exactly two tight muons, pT > 26, |eta| < 2.4:
    the pair mass (massless muons), the event weight and the two muons' eta."""
    ds = datasets[name]
    with uproot.open(ds.files[0]) as f:
        a = f["Events"].arrays([f"Muon_{k}" for k in FIELDS] + ([] if ds.is_data else ["genWeight"]))
    good = (a.Muon_pt > 26) & (abs(a.Muon_eta) < 2.4) & a.Muon_tightId
    keep = ak.sum(good, axis=1) == 2
    a, good = a[keep], good[keep]
    m = {k: ak.to_numpy(ak.fill_none(ak.pad_none(a[f"Muon_{k}"][good], 2, clip=True), 0)).astype(float)
         for k in FIELDS}
    w = np.ones(len(a)) if ds.is_data else ak.to_numpy(a.genWeight).astype(float)
    pt, eta, phi = m["pt"], m["eta"], m["phi"]
    mass = np.sqrt(2 * pt[:, 0] * pt[:, 1] * (np.cosh(eta[:, 0] - eta[:, 1]) - np.cos(phi[:, 0] - phi[:, 1])))
    os_ = m["charge"][:, 0] * m["charge"][:, 1] < 0
    return {"mass": mass[os_], "w": w[os_], "eta": eta[os_]}


DATA, MC = dimuons("data"), dimuons("zmumu")
print(f"{len(DATA['mass'])} data and {len(MC['mass'])} simulated Z candidates")

# %% [markdown]
# ### Exercise 12.1 — the scale, from the peak
#
# In the window 86 < m < 96 GeV, compute the mean dimuon mass in data (`mean_data`) and in
# the simulation (`mean_mc`, weighted by `MC["w"]`), the ratio `scale = mean_data / mean_mc`
# (the data's momentum scale relative to the simulation: the mass scales like the p_T), and
# its statistical uncertainty from the data, `scale_err = std / sqrt(N) / mean_mc` (std and N
# of the data masses in the window).

# %% tags=["exercise"]
mean_data, mean_mc, scale, scale_err = ..., ..., ..., ...
### BEGIN SOLUTION
in_d = (DATA["mass"] > 86) & (DATA["mass"] < 96)
in_m = (MC["mass"] > 86) & (MC["mass"] < 96)
mean_data = DATA["mass"][in_d].mean()
mean_mc = np.average(MC["mass"][in_m], weights=MC["w"][in_m])
scale = mean_data / mean_mc
scale_err = DATA["mass"][in_d].std() / np.sqrt(in_d.sum()) / mean_mc
### END SOLUTION

# %% tags=["check"]
_x = [m for m in DATA["mass"] if 86 < m < 96]  # one candidate at a time
np.testing.assert_allclose(mean_data, sum(_x) / len(_x), rtol=1e-9)
_sel = (MC["mass"] > 86) & (MC["mass"] < 96)
np.testing.assert_allclose(mean_mc, np.sum(MC["mass"][_sel] * MC["w"][_sel]) / np.sum(MC["w"][_sel]), rtol=1e-9)
np.testing.assert_allclose(scale, mean_data / mean_mc, rtol=1e-12)
np.testing.assert_allclose(scale_err, np.std(_x) / np.sqrt(len(_x)) / mean_mc, rtol=1e-9)
# physics: the data's scale, corrected by the generator's payload, is the simulation's
import correctionlib

_c = correctionlib.CorrectionSet.from_file(str(SAMPLES / "corrections.json"))["muon_scale_correction"]
_in = (DATA["mass"] > 86) & (DATA["mass"] < 96)
_payload = np.mean(1 / np.sqrt(_c.evaluate(DATA["eta"][_in, 0]) * _c.evaluate(DATA["eta"][_in, 1])))
print(f"scale {scale:.5f} ± {scale_err:.5f}; the payload's bias of these muons {_payload:.5f}")
assert abs(scale - _payload) < 3 * scale_err + 2e-4, "the Z peak measures the scale bias"
print("right")

# %% [markdown]
# ### Exercise 12.2 — how many Z are needed?
#
# A scale known to `scale_err` moves m_W by about `scale_err × m_W`. Compute `mw_shift_mev`,
# that m_W uncertainty in MeV (use the simulation's m_W, `MW_REF_MEV`), and `n_z_needed`, the number of Z
# candidates in the window needed to bring it down to 2 MeV (the statistical error scales as
# 1/sqrt(N)).

# %% tags=["exercise"]
from analysis.constants import MW_REF_MEV  # the simulation's m_W (MeV)

mw_shift_mev, n_z_needed = ..., ...
### BEGIN SOLUTION
n_now = int(((DATA["mass"] > 86) & (DATA["mass"] < 96)).sum())
mw_shift_mev = scale_err * MW_REF_MEV
n_z_needed = n_now * (mw_shift_mev / 2.0) ** 2
### END SOLUTION

# %% tags=["check"]
_n = int(((DATA["mass"] > 86) & (DATA["mass"] < 96)).sum())
np.testing.assert_allclose(mw_shift_mev, scale_err * MW_REF_MEV, rtol=1e-9)
np.testing.assert_allclose(n_z_needed, _n * (scale_err * MW_REF_MEV / 2.0) ** 2, rtol=1e-6)
print(f"right: {_n} Z give {mw_shift_mev:.0f} MeV on m_W; 2 MeV needs {n_z_needed:,.0f} Z "
      "(CMS has tens of millions)")
assert n_z_needed > 100 * _n

# %% [markdown]
# **Take-away**: the momentum scale is the W mass' first systematic. The analysis measures it
# in cells of (η₁, η₂) of the two muons from the Z peak (`wmass calibrate`,
# `analysis/calibrate/scale.py`), applies it to the data (`muon_scale_correction`) and keeps
# its uncertainty as nuisance parameters of the fit. The W-like fit on the Z
# (`--analysis wlike`) is the closure test: it must find the known Z mass.
