# %% [markdown]
# # 01 — Columnar basics: uproot, awkward, NanoEvents
#
# Analysis code in this course never loops over events in Python. It works on whole *columns*
# (all muon pTs of a file at once) with array operations: awkward arrays for the jagged
# collections, numpy for flat ones. This notebook selects good muons three ways — raw uproot +
# awkward, then coffea's NanoEvents, which gives the columns physics meaning (four-vectors,
# links to the generator record) — and finds the Z peak in real collision data.
#
# Time: about 20 minutes.

# %%
import os
from pathlib import Path

def find_nanoaod() -> Path:
    candidates = [os.environ.get("WMASS_NANOAOD"), "../tests/data/nanoaod",
                  "../../tests/data/nanoaod", "tests/data/nanoaod"]
    for c in candidates:
        if c and (Path(c) / "nano_dy.root").exists():
            return Path(c).resolve()
    raise FileNotFoundError(f"no real NanoAOD files in {candidates}: set WMASS_NANOAOD")

NANOAOD = find_nanoaod()
NANOAOD

# %% [markdown]
# ## 1. Jagged arrays with uproot and awkward

# %%
import awkward as ak
import numpy as np
import uproot

with uproot.open(NANOAOD / "nano_dy.root") as f:
    mu = f["Events"].arrays(
        ["Muon_pt", "Muon_eta", "Muon_charge", "Muon_tightId", "Muon_pfRelIso04_all"],
        how="zip",  # group Muon_* branches into one record array: mu.Muon.pt, mu.Muon.eta...
    )
muons = mu.Muon
print(muons.fields)
print("muons per event:", ak.num(muons))
print("total muons:", ak.sum(ak.num(muons)))

# %% [markdown]
# A *mask* is a boolean array with the same jagged structure. Indexing with it keeps the muons
# where it is true, event by event — the number of events does not change:

# %%
good = (muons.pt > 20) & (abs(muons.eta) < 2.4) & muons.tightId & (muons.pfRelIso04_all < 0.15)
good_muons = muons[good]
print(ak.num(muons)[:10].tolist(), "->", ak.num(good_muons)[:10].tolist())
one_muon = ak.num(good_muons) == 1          # a flat mask: one entry per event
print(f"{ak.sum(one_muon)} of {len(muons)} events have exactly one good muon")

# %% [markdown]
# ### Exercise 1.1
#
# The W-mass analysis wants events with **exactly one** good muon; but it also vetoes events
# with a *second, looser* muon (pT > 10 GeV, any isolation), which would signal a Z.
# Build `w_like`: a flat boolean mask (one entry per event) that is true when the event has
# exactly one good muon **and** no other muon with pT > 10 GeV.

# %% tags=["exercise"]
w_like = None  # a boolean array of length len(muons)
### BEGIN SOLUTION
loose = muons.pt > 10
w_like = (ak.num(good_muons) == 1) & (ak.sum(loose, axis=1) == 1)
w_like
### END SOLUTION

# %% tags=["check"]
# the same selection written as a plain Python loop over events (slow, but obviously right)
expected = []
for ev in ak.to_list(muons):
    n_good = sum(m["pt"] > 20 and abs(m["eta"]) < 2.4 and m["tightId"]
                 and m["pfRelIso04_all"] < 0.15 for m in ev)
    n_loose = sum(m["pt"] > 10 for m in ev)
    expected.append(n_good == 1 and n_loose == 1)
assert ak.to_list(w_like) == expected
print(f"right: {sum(expected)} W-like events")

# %% [markdown]
# ## 2. NanoEvents: columns with physics meaning
#
# coffea's `NanoEventsFactory` reads the same file but knows the NanoAOD conventions:
# `events.Muon` is a collection of Lorentz vectors (so `mu1 + mu2` is a four-vector sum), and
# index branches like `Muon_genPartIdx` become links (`events.Muon.matched_gen`).

# %%
import warnings
from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

warnings.filterwarnings("ignore", module="coffea.nanoevents")  # tiny test files lack some links

def open_nanoevents(path):
    return NanoEventsFactory.from_root(
        {str(path): "Events"}, schemaclass=NanoAODSchema, mode="eager"
    ).events()

dy = open_nanoevents(NANOAOD / "nano_dy.root")
print(dy.Muon.fields[:12])
matched = dy.Muon.matched_gen
print("pdgId of the generator particle each muon comes from:", matched.pdgId[:8].tolist())
print("sum of generator weights:", ak.sum(dy.genWeight))

# %% [markdown]
# ## 3. The Z peak in real collision data
#
# `nano_dimuon.root` is 2018 collision data (DoubleMuon). Pair the good muons of each event
# with `ak.combinations`, keep opposite-charge pairs and compute their invariant mass.

# %%
data = open_nanoevents(NANOAOD / "nano_dimuon.root")
m = data.Muon
sel = m[(m.pt > 15) & (abs(m.eta) < 2.4) & m.tightId & (m.pfRelIso04_all < 0.15)]
pairs = ak.combinations(sel, 2, fields=["first", "second"])
pairs = pairs[pairs.first.charge != pairs.second.charge]
mass = ak.flatten((pairs.first + pairs.second).mass)
print(f"{len(data)} events, run {data.run[0]}: opposite-sign masses {np.round(ak.to_numpy(mass), 1)}")

# %% [markdown]
# ### Exercise 1.2
#
# Check the four-vector arithmetic by hand. For massless muons,
# $m^2 = 2\,p_{T,1}\,p_{T,2}\,(\cosh\Delta\eta - \cos\Delta\phi)$.
# Compute `mass_by_hand` from `pairs.first.pt`, `.eta`, `.phi` and `pairs.second.*` with numpy
# functions (they work on awkward arrays), flattened like `mass`.

# %% tags=["exercise"]
mass_by_hand = None
### BEGIN SOLUTION
a, b = pairs.first, pairs.second
m2 = 2 * a.pt * b.pt * (np.cosh(a.eta - b.eta) - np.cos(a.phi - b.phi))
mass_by_hand = ak.flatten(np.sqrt(m2))
mass_by_hand
### END SOLUTION

# %% tags=["check"]
# the muon mass (0.106 GeV) is negligible at 90 GeV: agreement to 0.1%
assert len(mass_by_hand) == len(mass) > 0
np.testing.assert_allclose(ak.to_numpy(mass_by_hand), ak.to_numpy(mass), rtol=1e-3)
assert all(80 < x < 100 for x in ak.to_numpy(mass)), "these are Z bosons"
print("right: the pairs are Z -> mu mu candidates")

# %% [markdown]
# ## 4. A histogram
#
# `hist` histograms have named axes; `mplhep` draws them in the CMS style.

# %%
import hist
import matplotlib.pyplot as plt
import mplhep

h = hist.Hist(hist.axis.Regular(20, 0, 100, name="pt", label=r"muon $p_T$ [GeV]"))
h.fill(pt=ak.flatten(dy.Muon.pt))
plt.style.use(mplhep.style.CMS)
fig, ax = plt.subplots(figsize=(6, 4))
mplhep.histplot(h, ax=ax, label="DY simulation")
ax.legend()
assert h.sum() + h[hist.overflow] == ak.sum(ak.num(dy.Muon))

# %% [markdown]
# **Take-away**: select with masks, never with loops; keep the event structure until you really
# want a flat list (`ak.flatten`). Next: 02 puts this into a coffea *processor* and runs it on a
# Dask cluster.
