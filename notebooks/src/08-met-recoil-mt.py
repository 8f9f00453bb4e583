# %% [markdown]
# # 08 — Missing transverse momentum, the hadronic recoil and m_T
#
# The neutrino of W → μν escapes: what the detector sees is the muon and everything else, the
# **hadronic recoil** u (the jets and soft particles that balance the W's transverse momentum).
# The missing transverse momentum is what balances the visible event,
# **MET = −(p_T(μ) + u)**, an estimate of the neutrino's p_T. From the muon and the MET the
# **transverse mass** m_T = sqrt(2 p_T MET (1 − cos Δφ)) has a Jacobian edge at m_W.
#
# The recoil is measured worse than the muon, and worse with more pileup; the analysis
# calibrates it on Z → μμ, where both muons are seen and the boson's p_T (q_T) is known.
# Time: about 25 minutes.

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
BRANCHES = ["Muon_pt", "Muon_eta", "Muon_phi", "Muon_tightId", "MET_pt", "MET_phi", "PV_npvs"]


def events_with_tight_muons(name, n, pt_min):
    """Events of dataset ``name`` with exactly ``n`` tight muons above ``pt_min`` (|eta| < 2.4)."""
    with uproot.open(datasets[name].files[0]) as f:
        a = f["Events"].arrays(BRANCHES)
    good = (a.Muon_pt > pt_min) & (abs(a.Muon_eta) < 2.4) & a.Muon_tightId
    keep = ak.sum(good, axis=1) == n
    a, good = a[keep], good[keep]
    def regular(x):  # exactly n per event -> a numpy array [events, n]
        return ak.to_numpy(ak.fill_none(ak.pad_none(x, n, clip=True), 0.0)).astype(float)

    return {
        "pt": regular(a.Muon_pt[good]),
        "phi": regular(a.Muon_phi[good]),
        "met": ak.to_numpy(a.MET_pt).astype(float),
        "met_phi": ak.to_numpy(a.MET_phi).astype(float),
        "npv": ak.to_numpy(a.PV_npvs),
    }


W = events_with_tight_muons("wmunu", 1, 26.0)
Z = events_with_tight_muons("zmumu", 2, 20.0)
print(len(W["met"]), "W events,", len(Z["met"]), "Z events")

# %% [markdown]
# ### Exercise 8.1 — the transverse mass
#
# Compute `mt`, the transverse mass of the muon (`W["pt"][:, 0]`, `W["phi"][:, 0]`) and the
# MET (`W["met"]`, `W["met_phi"]`) of every W event, as a numpy array.

# %% tags=["exercise"]
mt = ...
### BEGIN SOLUTION
mt = np.sqrt(2 * W["pt"][:, 0] * W["met"] * (1 - np.cos(W["phi"][:, 0] - W["met_phi"])))
### END SOLUTION

# %% tags=["check"]
from processors.selection import transverse_mass_xy

_ref = transverse_mass_xy(W["pt"][:, 0], W["phi"][:, 0], W["met"] * np.cos(W["met_phi"]),
                          W["met"] * np.sin(W["met_phi"]))
np.testing.assert_allclose(mt, _ref, rtol=1e-6, atol=1e-3)
# physics: the Jacobian peak sits below m_W and the distribution falls sharply above it
_h, _edges = np.histogram(mt, bins=np.arange(0, 125, 5))
_peak = _edges[np.argmax(_h)] + 2.5
print(f"m_T peaks at {_peak:.1f} GeV; {np.mean(mt > 100):.2%} of events above 100 GeV")
assert 60 < _peak < 85, "the Jacobian peak is just below m_W"
assert np.mean(mt > 100) < 0.05, "m_T <= m_W up to resolution and the W width"
print("right")

# %%
import matplotlib.pyplot as plt
import mplhep

plt.style.use(mplhep.style.CMS)
fig, ax = plt.subplots(figsize=(7, 4.5))
ax.hist(mt, bins=np.arange(0, 125, 2.5), histtype="step", lw=2, label="W → μν simulation")
from analysis.constants import MW_REF

ax.axvline(MW_REF, color="k", ls="--", label="m_W of the simulation")
ax.set_xlabel("$m_T$ [GeV]"); ax.set_ylabel("events"); ax.legend()

# %% [markdown]
# ### Exercise 8.2 — the recoil in Z → μμ
#
# In Z events, q_T is the dimuon p_T (both muons are measured well) and the recoil is
# **u = −(MET + q_T)** (vectors). Project u on the Z direction: `u_par` = u · q̂_T (about −q_T
# for a perfect detector) and `u_perp` = the component perpendicular to it (about 0). Compute
# both arrays (one entry per Z event), and `qt` (|q_T|).
#
# Then the two calibration numbers: the **response** `-mean(u_par) / mean(qt)` for
# q_T > 10 GeV, and the **resolution** `std(u_perp)`, separately for events with at most and
# more than the median number of primary vertices.

# %% tags=["exercise"]
qt, u_par, u_perp = ..., ..., ...
### BEGIN SOLUTION
qx = (Z["pt"] * np.cos(Z["phi"])).sum(axis=1)
qy = (Z["pt"] * np.sin(Z["phi"])).sum(axis=1)
ux = -(Z["met"] * np.cos(Z["met_phi"]) + qx)
uy = -(Z["met"] * np.sin(Z["met_phi"]) + qy)
qt = np.hypot(qx, qy)
u_par = (ux * qx + uy * qy) / qt
u_perp = (ux * qy - uy * qx) / qt
### END SOLUTION

# %% tags=["check"]
_n = len(Z["met"])
assert np.shape(qt) == np.shape(u_par) == np.shape(u_perp) == (_n,)
# u_par and u_perp are the components of one vector u: |u|^2 = u_par^2 + u_perp^2
_u2 = (Z["met"] * np.cos(Z["met_phi"]) + (Z["pt"] * np.cos(Z["phi"])).sum(axis=1)) ** 2 + (
    Z["met"] * np.sin(Z["met_phi"]) + (Z["pt"] * np.sin(Z["phi"])).sum(axis=1)) ** 2
np.testing.assert_allclose(u_par**2 + u_perp**2, _u2, rtol=1e-6, atol=1e-6)
_i = np.argmax(qt)  # the hardest Z: its recoil points against it
assert u_par[_i] < 0 < qt[_i]
_sel = qt > 10
response = -u_par[_sel].mean() / qt[_sel].mean()
_lo = Z["npv"] <= np.median(Z["npv"])
res_lo, res_hi = u_perp[_lo].std(), u_perp[~_lo].std()
print(f"response {response:.3f}; resolution {res_lo:.2f} GeV (low pileup), "
      f"{res_hi:.2f} GeV (high pileup)")
assert 0.8 < response < 1.2, "the recoil balances the Z on average"
assert res_hi > res_lo, "pileup degrades the recoil resolution"
print("right: the recoil is calibrated on the Z, in bins of pileup")

# %% [markdown]
# **Take-away**: m_T uses the worst-measured object of the event (the recoil), which is why
# the W-mass measurement fits the muon p_T and uses m_T only to define regions (m_T > 40 GeV
# for the signal, the low-m_T regions for the nonprompt background of notebook 06). A mis-
# calibrated recoil moves events across the m_T cut: the analysis corrects the recoil like the
# muons (`processors/base.py`, `met_with_pt`).
