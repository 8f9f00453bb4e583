# %% [markdown]
# # 06 — The nonprompt background by the ABCD method
#
# Some selected "W" events have no W: a muon from a b or c hadron decay, or a pion or kaon that
# decayed in flight, in a multijet (QCD) event. Simulation describes this *nonprompt*
# background badly (the cross section is huge, the fake rate tiny and hard to model), so the
# analysis measures it **from data**, in regions where it dominates, and extrapolates into the
# signal region. In the demo fit this is the largest background systematic.
#
# The two variables that separate it from the W: the muon **isolation** (nonprompt muons come
# with jets around them) and the **transverse mass** m_T (no neutrino: small MET, small m_T).
# Six regions:
#
# | | m_T < 20 GeV | 20-40 GeV | m_T > 40 GeV |
# |---|---|---|---|
# | **fails isolation** | Ax | A | C |
# | **passes isolation** | Bx | B | **D** (signal region) |
#
# Time: about 30 minutes. You fill the region table, subtract the prompt simulation from the
# data in the sidebands, predict D, and check that data = prompt + nonprompt in D.

# %%
from analysis.course import course_sample, work_dir

WORK = work_dir()         # your own directory: $WMASS_COURSE_DIR, default course-work/
sample = course_sample()  # your blinded sample: the facility's shared one, or made here once (~15 s)
SAMPLES, DATASETS = sample.path, sample.datasets
print(f"{sample.student}'s sample: {SAMPLES}")

# %% [markdown]
# ## 1. The W selection, with isolation and m_T left open
#
# Exactly one tight muon (pT 26-56 GeV, |η| < 2.4, close to the primary vertex), no other
# muon above 10 GeV, the single-muon trigger. The isolation and m_T are *not* cut: they define
# the regions. m_T = sqrt(2 pT MET (1 - cos Δφ)).

# %%
import awkward as ak
import numpy as np
import uproot

from analysis.datasets import load_datasets

datasets = load_datasets(DATASETS)
LUMI = datasets.lumi_pb
BRANCHES = ["Muon_pt", "Muon_eta", "Muon_phi", "Muon_tightId", "Muon_pfRelIso04_all",
            "Muon_dxy", "Muon_dz", "MET_pt", "MET_phi", "HLT_IsoMu24"]


def w_candidates(ds):
    """pT, isolation, m_T and weight of the selected events of one dataset (numpy arrays)."""
    arrays = []
    for path in ds.files:
        with uproot.open(path) as f:
            arrays.append(f["Events"].arrays(BRANCHES + ([] if ds.is_data else ["genWeight"])))
    a = ak.concatenate(arrays)
    good = ((a.Muon_pt > 26) & (a.Muon_pt < 56) & (abs(a.Muon_eta) < 2.4) & a.Muon_tightId
            & (abs(a.Muon_dxy) < 0.05) & (abs(a.Muon_dz) < 0.2))
    sel = (ak.sum(good, axis=1) == 1) & (ak.sum(a.Muon_pt > 10, axis=1) == 1) & a.HLT_IsoMu24
    a, good = a[sel], good[sel]
    pt = ak.to_numpy(ak.firsts(a.Muon_pt[good])).astype(float)
    phi = ak.to_numpy(ak.firsts(a.Muon_phi[good])).astype(float)
    iso = ak.to_numpy(ak.firsts(a.Muon_pfRelIso04_all[good])).astype(float)
    met, met_phi = ak.to_numpy(a.MET_pt).astype(float), ak.to_numpy(a.MET_phi).astype(float)
    mt = np.sqrt(2 * pt * met * (1 - np.cos(phi - met_phi)))
    if ds.is_data:
        w = np.ones(len(pt))
    else:  # simulation normalised to the data's luminosity
        w = ak.to_numpy(a.genWeight).astype(float) * ds.xsec_pb * LUMI / ds.sumw
    return {"pt": pt, "iso": iso, "mt": mt, "w": w}


cands = {name: w_candidates(ds) for name, ds in datasets.items()}
for name, c in cands.items():
    print(f"{name:8s} {len(c['w']):6d} events, expected yield {c['w'].sum():9.1f}")

# %% [markdown]
# ### Exercise 6.1 — the region table
#
# Write `regions(c)`: for one dataset's candidates `c`, a 2 × 3 numpy array of **summed
# weights**, row 0 = fails isolation (`iso >= 0.15`), row 1 = passes (`iso < 0.15`), columns
# the m_T bins [0, 20), [20, 40), [40, ∞) GeV — so `[[Ax, A, C], [Bx, B, D]]`.
# Then `table = {name: regions(c) for name, c in cands.items()}`.

# %% tags=["exercise"]
table = ...  # {dataset name: 2 x 3 array}
### BEGIN SOLUTION
def regions(c):
    iso_bin = (c["iso"] < 0.15).astype(int)
    mt_bin = np.digitize(c["mt"], [20.0, 40.0])
    out = np.zeros((2, 3))
    np.add.at(out, (iso_bin, mt_bin), c["w"])
    return out

table = {name: regions(c) for name, c in cands.items()}
### END SOLUTION

# %% tags=["check"]
assert isinstance(table, dict) and set(table) == set(cands), "one 2 x 3 array per dataset"
for name, c in cands.items():
    _ref = np.zeros((2, 3))
    for _iso, _mt, _w in zip(c["iso"], c["mt"], c["w"]):  # one event at a time: obviously right
        _ref[int(_iso < 0.15), 0 if _mt < 20 else (1 if _mt < 40 else 2)] += _w
    np.testing.assert_allclose(table[name], _ref, rtol=1e-9, err_msg=name)
print("right:")
for name, t in table.items():
    print(f"{name:8s}", np.round(t, 1).tolist())

# %% [markdown]
# Look at the table: the W (`wmunu`) sits in D; QCD dominates the failing-isolation row and
# the low-m_T column. The simulated QCD is shown only to compare: the method below uses the
# **data** and the **prompt** simulation (everything but QCD).
#
# ### Exercise 6.2 — subtract the prompt processes, predict D
#
# In each sideband the nonprompt yield is data minus the prompt simulation. Compute
# `nonprompt`, the 2 × 3 array data − Σ prompt (every dataset but `data` and `qcd`), then
# the predictions of the signal-region yield
#
# - simple ABCD (fake rate constant in m_T): `d_simple = C · B / A`,
# - extended ABCD (log of the fake rate linear in m_T): `d_extended = C · Ax · B² / (Bx · A²)`,
#
# with the sideband yields taken from `nonprompt`.

# %% tags=["exercise"]
nonprompt, d_simple, d_extended = ..., ..., ...
### BEGIN SOLUTION
prompt = sum(t for name, t in table.items() if name not in ("data", "qcd"))
nonprompt = table["data"] - prompt
(Ax, A, C), (Bx, B, _) = nonprompt
d_simple = C * B / A
d_extended = C * Ax * B**2 / (Bx * A**2)
### END SOLUTION

# %% tags=["check"]
from analysis.postprocess.nonprompt import extended_abcd, simple_abcd

_prompt = np.zeros((2, 3))
for name, t in table.items():
    if name not in ("data", "qcd"):
        _prompt += t
_np = table["data"] - _prompt
np.testing.assert_allclose(nonprompt, _np, rtol=1e-9)
# the analysis' own functions (analysis/postprocess/nonprompt.py) on the same numbers
np.testing.assert_allclose(d_simple, simple_abcd(_np[0, 1], _np[1, 1], _np[0, 2]), rtol=1e-9)
np.testing.assert_allclose(
    d_extended, extended_abcd(_np[0, 0], _np[1, 0], _np[0, 1], _np[1, 1], _np[0, 2]), rtol=1e-9
)
# physics: data in the signal region = prompt + nonprompt (within 5 %: efficiencies and scale
# of the data are not corrected here), and the nonprompt is a small part of it
_total = _prompt[1, 2] + d_extended
print(f"D: data {table['data'][1, 2]:.0f}, prompt {_prompt[1, 2]:.0f} + nonprompt "
      f"{d_extended:.0f} (simple ABCD {d_simple:.0f})")
assert abs(table["data"][1, 2] / _total - 1) < 0.05, "prompt + nonprompt should describe D"
assert 0.005 < d_extended / _total < 0.15, "the nonprompt background is a few per cent of D"
print("right: the background model closes in the signal region")

# %% [markdown]
# ### Exercise 6.3 — does the method work? Closure on the simulation
#
# Apply the same extended ABCD formula to the **QCD simulation alone** (its own six regions)
# and compare the prediction with the QCD simulation's actual yield in D. Store the ratio
# prediction / actual in `closure`, and the statistical uncertainty of the actual yield
# `sqrt(sum w²)` relative to the yield in `closure_err`.

# %% tags=["exercise"]
closure, closure_err = ..., ...
### BEGIN SOLUTION
(qAx, qA, qC), (qBx, qB, qD) = table["qcd"]
closure = qC * qAx * qB**2 / (qBx * qA**2) / qD
_q = cands["qcd"]
_in_d = (_q["iso"] < 0.15) & (_q["mt"] >= 40)
closure_err = np.sqrt((_q["w"][_in_d] ** 2).sum()) / _q["w"][_in_d].sum()
### END SOLUTION

# %% tags=["check"]
_t = table["qcd"]
_pred = extended_abcd(_t[0, 0], _t[1, 0], _t[0, 1], _t[1, 1], _t[0, 2])
np.testing.assert_allclose(closure, _pred / _t[1, 2], rtol=1e-9)
assert 0 < closure_err < 0.5
print(f"closure {closure:.3f} ± {closure_err:.3f} (stat. of D only)")
# physics: the extrapolation works to ~20 % on the simulation; the analysis assigns the
# non-closure and the simple-vs-extended difference as systematic uncertainties
assert abs(closure - 1) < 0.2 + 3 * closure_err, "the ABCD extrapolation does not close"
print(f"right: non-closure {closure - 1:+.1%}; simple vs extended in data "
      f"{d_simple / d_extended - 1:+.1%}")

# %% [markdown]
# **Take-away**: the nonprompt background is measured, not simulated; what is simulated (the
# prompt subtraction, the m_T dependence of the fake rate) becomes its uncertainty. The
# analysis does this bin by bin in pT × η × charge and for every systematic variation of the
# prompt simulation at once (`analysis/postprocess/nonprompt.py`), and `wmass setup-fit`
# prints the closure on the QCD simulation (`--nonprompt-method` chooses simple or extended).
