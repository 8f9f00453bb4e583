# %% [markdown]
# # 03 — Systematics as tensors
#
# Every systematic uncertainty of the W-mass analysis is an **event weight variation**: 103 PDF
# replicas, 9 QCD scales, 21 W-mass shifts, hundreds of efficiency eigenvectors... The old way is
# one histogram per variation: the bin of each event is looked up hundreds of times. The way of
# this framework (and of the CMS analysis): one histogram with an extra, last *variation axis*,
# filled as a tensor — one bin lookup per event, then a contiguous vector of weights added.
#
# Time: about 25 minutes.

# %%
from analysis.course import course_sample, work_dir

WORK = work_dir()         # your own directory: $WMASS_COURSE_DIR, default course-work/
sample = course_sample()  # your blinded sample: the facility's shared one, or made here once (~15 s)
SAMPLES, DATASETS = sample.path, sample.datasets
print(f"{sample.student}'s sample: {SAMPLES}")
sorted(p.name for p in SAMPLES.iterdir())

# %%
import time

import awkward as ak
import hist
import numpy as np
import uproot

from analysis.datasets import load_datasets

datasets = load_datasets(DATASETS)
with uproot.open(datasets["wmunu"].files[0]) as f:
    arrays = f["Events"].arrays(["Muon_pt", "Muon_eta", "Muon_tightId", "genWeight",
                                 "LHEPdfWeight", "MEParamWeight"])
one = ak.num(arrays.Muon_pt[arrays.Muon_tightId]) >= 1
lead = arrays[one]
pt = ak.to_numpy(lead.Muon_pt[lead.Muon_tightId][:, 0]).astype(float)
eta = ak.to_numpy(lead.Muon_eta[lead.Muon_tightId][:, 0]).astype(float)
w = ak.to_numpy(lead.genWeight).astype(float)
pdf = ak.to_numpy(lead.LHEPdfWeight)        # [events, 103]: weight ratio of each PDF replica
mass = ak.to_numpy(lead.MEParamWeight)      # [events, 21]: m_W shifts -100..+100 MeV
print(len(pt), "events;", pdf.shape, mass.shape)

# %% [markdown]
# ## 1. One histogram per variation vs one tensor fill

# %%
pt_ax = hist.axis.Regular(30, 26, 56, name="pt")
eta_ax = hist.axis.Regular(48, -2.4, 2.4, name="eta")

t0 = time.perf_counter()
loop = []
for v in range(pdf.shape[1]):
    h = hist.Hist(pt_ax, eta_ax)
    h.fill(pt=pt, eta=eta, weight=w * pdf[:, v])
    loop.append(h.values())
loop = np.stack(loop, axis=-1)
t_loop = time.perf_counter() - t0

from processors import TensorFill

t0 = time.perf_counter()
tensor = TensorFill([pt_ax, eta_ax], hist.axis.Integer(0, pdf.shape[1], name="pdf", flow=False))
tensor.fill(tensor.index(pt, eta), w, pdf)
h_pdf = tensor.to_hist()
t_tensor = time.perf_counter() - t0
print(h_pdf.axes.name, h_pdf.shape)
print(f"103 fills: {t_loop * 1e3:.1f} ms, one tensor fill: {t_tensor * 1e3:.1f} ms "
      "(the first call also compiles the numba kernel)")
np.testing.assert_allclose(h_pdf.values(), loop, rtol=1e-10)

# %% [markdown]
# Same numbers, one bin lookup per event. On the full analysis (17,280 bins × 103 PDFs and
# hundreds of other variations) this is what keeps the event loop fast and the memory small:
# see `benchmarks/histmaker.py` and the seminar's table (×4 from the tensor axis alone).
#
# ## 2. What a variation does: the W-mass templates
#
# `MEParamWeight` reweights the W line shape to another mass. Its effect on the muon pT is
# tiny — a few per mille around the Jacobian peak at m_W/2 — and that is all the fit has to
# measure m_W with.

# %%
import matplotlib.pyplot as plt
import mplhep

tm = TensorFill([pt_ax], hist.axis.Integer(0, mass.shape[1], name="massShift", flow=False))
tm.fill(tm.index(pt), w, mass)
h_mass = tm.to_hist().values()     # [pt, 21]
nominal = h_mass[:, 10]
plt.style.use(mplhep.style.CMS)
fig, ax = plt.subplots(figsize=(7, 4))
for i, label in [(0, "-100 MeV"), (20, "+100 MeV")]:
    ax.step(pt_ax.edges[:-1], h_mass[:, i] / nominal, where="post", label=label)
ax.axhline(1, color="k", lw=0.8)
ax.set_xlabel("muon pT [GeV]"); ax.set_ylabel("variation / nominal"); ax.legend()

# %% [markdown]
# ### Exercise 3.1
#
# The PDF uncertainty of a Hessian PDF set (NNPDF3.1 Hessian: replica 0 is the central value,
# 1-100 the eigenvector shifts, 101-102 the α_S variations) is, per bin,
# `sqrt(sum_{i=1..100} (h_i - h_0)^2)`.
#
# From `h_pdf` (pt × eta × 103), compute `pdf_unc_pt`: the PDF uncertainty of the **pT
# distribution summed over eta** (30 numbers). Careful: sum over eta *before* combining the
# replicas — why?

# %% tags=["exercise"]
pdf_unc_pt = None
### BEGIN SOLUTION
v = h_pdf.values().sum(axis=1)              # [pt, 103]: project first, the replicas are correlated
pdf_unc_pt = np.sqrt(((v[:, 1:101] - v[:, [0]]) ** 2).sum(axis=1))
pdf_unc_pt
### END SOLUTION

# %% tags=["check"]
_ref = []
for b in range(30):
    _n = loop[b].sum(axis=0)                # [103] for this pt bin, summed over eta (from the loop fill)
    _ref.append(np.sqrt(sum((_n[i] - _n[0]) ** 2 for i in range(1, 101))))
np.testing.assert_allclose(pdf_unc_pt, _ref, rtol=1e-9)
print("right: relative PDF uncertainty per pT bin", np.round(pdf_unc_pt / loop[:, :, 0].sum(axis=1), 4))

# %% [markdown]
# ## 3. The real processor
#
# `WMassProcessor` fills the 5D histogram (pt, eta, charge, passIso, mT) with every variation at
# once. Run it on the signal with the iterative executor and look at what comes out:

# %%
from analysis.histmaker import make_processor
from analysis.runner.run import run

proc = make_processor("wmass", datasets, corrections=SAMPLES / "corrections.json")
out = run(proc, {"wmunu": datasets["wmunu"]}, executor="iterative", progress=False).output
for name, h in out["wmunu"]["histograms"].items():
    print(f"{name:14s} {h.axes.name[-1]:14s} {h.shape[-1]:4d} variations, {h.values().nbytes / 1e6:6.1f} MB")
