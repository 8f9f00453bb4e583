# %% [markdown]
# # 07 — Muon identification and isolation
#
# A muon candidate in NanoAOD comes with quality flags (`Muon_looseId`, `Muon_mediumId`,
# `Muon_tightId`: how well the tracker and muon-system tracks match, how many hits...), impact
# parameters (`Muon_dxy`, `Muon_dz`: distance to the primary vertex) and the **relative
# isolation** `Muon_pfRelIso04_all`: the transverse energy of the particle-flow candidates in a
# cone ΔR < 0.4 around the muon, divided by its pT. A muon from a W decay is alone; a muon from
# a b-hadron decay sits in a jet.
#
# You compare the W signal and the QCD multijet simulation, measure the efficiency of the
# isolation cut for both, and choose the cut yourself. Time: about 25 minutes.

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
BRANCHES = ["Muon_pt", "Muon_eta", "Muon_tightId", "Muon_mediumId", "Muon_looseId",
            "Muon_pfRelIso04_all", "Muon_dxy", "Muon_dz", "genWeight"]


def leading_muons(name):
    """The leading muon with pT > 26 GeV and |eta| < 2.4 of each event that has one."""
    with uproot.open(datasets[name].files[0]) as f:
        a = f["Events"].arrays(BRANCHES)
    acc = (a.Muon_pt > 26) & (abs(a.Muon_eta) < 2.4)
    has = ak.any(acc, axis=1)
    a, acc = a[has], acc[has]
    lead = {k.removeprefix("Muon_"): ak.to_numpy(ak.firsts(a[k][acc]))
            for k in BRANCHES if k.startswith("Muon_")}
    lead["w"] = ak.to_numpy(a.genWeight).astype(float)
    return lead


W = leading_muons("wmunu")
QCD = leading_muons("qcd")
for label, m in (("W -> mu nu", W), ("QCD", QCD)):
    print(f"{label:10s} {len(m['pt']):6d} muons: loose {m['looseId'].mean():.3f}, "
          f"medium {m['mediumId'].mean():.3f}, tight {m['tightId'].mean():.3f}")

# %% [markdown]
# The identification flags are efficient for both: a nonprompt muon from a heavy-flavour decay
# *is* a real muon. The isolation is what separates them:

# %%
import matplotlib.pyplot as plt
import mplhep

plt.style.use(mplhep.style.CMS)
bins = np.linspace(0, 1, 41)
fig, ax = plt.subplots(figsize=(7, 4.5))
for label, m in (("W → μν", W), ("QCD multijet", QCD)):
    ax.hist(np.clip(m["pfRelIso04_all"], 0, 0.999), bins=bins, weights=m["w"], density=True,
            histtype="step", lw=2, label=label)
ax.axvline(0.15, color="k", ls="--", label="analysis cut 0.15")
ax.set_yscale("log"); ax.set_xlabel("pfRelIso04_all"); ax.set_ylabel("a.u."); ax.legend()

# %% [markdown]
# ### Exercise 7.1 — efficiency of the isolation cut
#
# Among the leading muons that pass the tight ID and the vertex cuts (|dxy| < 0.05 cm,
# |dz| < 0.2 cm), what fraction has `pfRelIso04_all < 0.15`? Compute it, **weighted by the
# generator weight**, for the signal (`eff_w`) and for QCD (`eff_qcd`).

# %% tags=["exercise"]
eff_w, eff_qcd = ..., ...
### BEGIN SOLUTION
def iso_efficiency(m, cut=0.15):
    ident = m["tightId"] & (abs(m["dxy"]) < 0.05) & (abs(m["dz"]) < 0.2)
    passed = ident & (m["pfRelIso04_all"] < cut)
    return m["w"][passed].sum() / m["w"][ident].sum()

eff_w, eff_qcd = iso_efficiency(W), iso_efficiency(QCD)
### END SOLUTION

# %% tags=["check"]
def _eff(m):
    num = den = 0.0
    for tight, dxy, dz, iso, w in zip(m["tightId"], m["dxy"], m["dz"], m["pfRelIso04_all"], m["w"]):
        if tight and abs(dxy) < 0.05 and abs(dz) < 0.2:
            den += w
            num += w if iso < 0.15 else 0.0
    return num / den

np.testing.assert_allclose([eff_w, eff_qcd], [_eff(W), _eff(QCD)], rtol=1e-9)
assert eff_w > 0.9, "prompt muons are isolated"
assert eff_qcd < 0.5 * eff_w, "the cut rejects most nonprompt muons"
print(f"right: isolation efficiency {eff_w:.3f} for W, {eff_qcd:.3f} for QCD "
      f"(rejection x{eff_w / eff_qcd:.1f})")

# %% [markdown]
# ### Exercise 7.2 — choose the cut
#
# A tighter cut removes more QCD but also signal. With the samples normalised to the data's
# luminosity (`xsec × lumi / sumw`), the expected signal and background yields after a cut
# `c` are S(c) and B(c). Scan `cuts = np.arange(0.02, 0.62, 0.02)` and store in `best_cut`
# the cut that maximises S / sqrt(S + B) (the significance of the signal; tight ID and vertex
# cuts applied as above).

# %% tags=["exercise"]
cuts = np.arange(0.02, 0.62, 0.02)
best_cut = ...
### BEGIN SOLUTION
lumi = datasets.lumi_pb

def yield_after(m, name, cut):
    ident = m["tightId"] & (abs(m["dxy"]) < 0.05) & (abs(m["dz"]) < 0.2)
    scale = datasets[name].xsec_pb * lumi / datasets[name].sumw
    return scale * m["w"][ident & (m["pfRelIso04_all"] < cut)].sum()

S = np.array([yield_after(W, "wmunu", c) for c in cuts])
B = np.array([yield_after(QCD, "qcd", c) for c in cuts])
best_cut = float(cuts[np.argmax(S / np.sqrt(S + B))])
### END SOLUTION

# %% tags=["check"]
def _yield(m, name, cut):
    ident = m["tightId"] & (abs(m["dxy"]) < 0.05) & (abs(m["dz"]) < 0.2)
    return (datasets[name].xsec_pb * datasets.lumi_pb / datasets[name].sumw
            * np.sum(np.where(ident & (m["pfRelIso04_all"] < cut), m["w"], 0.0)))

_signif = [_yield(W, "wmunu", c) / np.sqrt(_yield(W, "wmunu", c) + _yield(QCD, "qcd", c))
           for c in cuts]
assert best_cut == float(cuts[int(np.argmax(_signif))]), "the maximum of S/sqrt(S+B)"
assert 0.04 <= best_cut <= 0.4, "a cut well below the QCD bulk and above the W's"
print(f"right: best cut {best_cut:.2f} (the analysis uses 0.15: with a systematic-limited "
      "measurement, purity matters more than statistics)")

# %% [markdown]
# **Take-away**: identification keeps real muons, isolation separates prompt from nonprompt.
# The muons that *fail* isolation are not thrown away: they are the control regions of the
# nonprompt background (notebook 06). The efficiencies of ID and isolation differ slightly
# between data and simulation; tag-and-probe on Z → μμ measures them (`wmass calibrate`).
