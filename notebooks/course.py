"""The course, cell by cell: ``build.py`` turns each entry of ``NOTEBOOKS`` into an ``.ipynb``.

Kinds: ``md``, ``code``, ``exercise`` (the learner's cell), ``solution`` (collapsed, runs in
CI), ``check`` (asserts on the learner's answer).
"""

# Where the real NanoAOD test files are: $WMASS_NANOAOD, or ../shared beside the clone.
FIND_NANOAOD = """
import os
from pathlib import Path

def find_nanoaod() -> Path:
    candidates = [os.environ.get("WMASS_NANOAOD"), "../../shared/data/nanoaod",
                  "/work/shared/data/nanoaod"]
    for c in candidates:
        if c and (Path(c) / "nano_dy.root").exists():
            return Path(c).resolve()
    raise FileNotFoundError(f"no real NanoAOD files in {candidates}: set WMASS_NANOAOD")

NANOAOD = find_nanoaod()
NANOAOD
"""

# Where generated samples and outputs go: $WMASS_COURSE_DIR (CI shares one between notebooks).
WORKDIR = """
import os
from pathlib import Path

WORK = Path(os.environ.get("WMASS_COURSE_DIR", "course-work")).resolve()
WORK.mkdir(parents=True, exist_ok=True)
WORK
"""

SETUP_00 = [
    (
        "md",
        """
# 00 — Set-up check (pre-exercise)

Before the school starts, make sure your environment works: this notebook checks the Python
version and the analysis stack, that the `wmass` command is installed, and opens a real CMS
NanoAOD file. Every cell should run without error in a few seconds. If one fails, the message
says what to install; ask on the course channel with the full error.

Run it top to bottom (*Run → Run All Cells*).
""",
    ),
    ("md", "## 1. Python and the packages of the stack"),
    (
        "code",
        """
import sys
from importlib import metadata

assert sys.version_info >= (3, 11), f"Python 3.11 or newer is needed, this is {sys.version}"

STACK = ["numpy", "awkward", "uproot", "coffea", "hist", "numba", "dask", "distributed",
         "dask-awkward", "correctionlib", "jax", "scipy", "iminuit", "h5py", "mplhep", "plotly",
         "wmass"]
versions = {}
for name in STACK:
    try:
        versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        versions[name] = None
for name, v in versions.items():
    print(f"{name:15s} {v or 'MISSING: pip install -e .[test] in the wmass clone'}")
missing = [n for n, v in versions.items() if v is None]
assert not missing, f"missing packages: {missing}"
""",
    ),
    (
        "md",
        """
The likelihood fit needs double precision: JAX computes in float32 unless told otherwise.
`fit` switches it on when imported; check that it does.
""",
    ),
    (
        "code",
        """
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp

x = jnp.ones(3)
print(x.dtype, jax.devices())
assert x.dtype == jnp.float64
""",
    ),
    ("md", "## 2. The `wmass` command"),
    (
        "code",
        """
import shutil
import subprocess
from pathlib import Path

wmass = shutil.which("wmass") or str(Path(sys.executable).parent / "wmass")
out = subprocess.run([wmass, "--help"], capture_output=True, text=True, check=True)
print(out.stdout)
assert "histmaker" in out.stdout and "fit" in out.stdout
""",
    ),
    (
        "md",
        """
## 3. Open a real NanoAOD file

NanoAOD is a ROOT file with one `TTree` called `Events`: one entry per collision, one branch
per quantity. Collections of objects (muons, jets...) are *jagged*: `nMuon` says how many
muons an event has and `Muon_pt`, `Muon_eta`, ... hold their properties.
`uproot` reads ROOT files with no ROOT installed.
""",
    ),
    ("code", FIND_NANOAOD),
    (
        "code",
        """
import uproot

f = uproot.open(NANOAOD / "nano_dy.root")
events = f["Events"]
print(f"{events.num_entries} events, {len(events.keys())} branches")
muon_branches = [k for k in events.keys() if k.startswith("Muon_")]
print(len(muon_branches), "muon branches, e.g.", muon_branches[:8])
events.show(filter_name=["nMuon", "Muon_pt", "Muon_eta", "Muon_tightId", "genWeight"])
""",
    ),
    (
        "code",
        """
pt = events["Muon_pt"].array()
print(pt)          # one list of muon pTs per event
print(pt.type)     # 40 * var * float32: 40 events, a variable number of muons each
""",
    ),
    (
        "md",
        """
### Exercise 0.1

How many events of `nano_tt_v12.root` (a ttbar sample, NanoAOD v12) have **at least one muon**?
Store the answer in `n_with_muon` (an `int`). Hint: read the `nMuon` branch.
""",
    ),
    (
        "exercise",
        """
n_with_muon = None  # replace with your code
""",
    ),
    (
        "solution",
        """
with uproot.open(NANOAOD / "nano_tt_v12.root") as tt:
    n_muon = tt["Events"]["nMuon"].array(library="np")
n_with_muon = int((n_muon > 0).sum())
n_with_muon
""",
    ),
    (
        "check",
        """
import numpy as np
with uproot.open(NANOAOD / "nano_tt_v12.root") as tt:
    _n = tt["Events"]["nMuon"].array(library="np")
assert n_with_muon == np.count_nonzero(_n), "count the events with nMuon > 0"
print(f"right: {n_with_muon} of {len(_n)} ttbar events have a muon")
""",
    ),
    (
        "md",
        """
## 4. An empty file is not an error

Real productions contain files where no event passed the skim. `nano_dy_empty.root` has an
`Events` tree with zero entries: reading it must give empty arrays, not crash.
""",
    ),
    (
        "code",
        """
with uproot.open(NANOAOD / "nano_dy_empty.root") as empty:
    arr = empty["Events"]["Muon_pt"].array()
print(len(arr), "events")
assert len(arr) == 0
print("Your environment is ready. Next: 01-columnar-basics.")
""",
    ),
]

COLUMNAR_01 = [
    (
        "md",
        """
# 01 — Columnar basics: uproot, awkward, NanoEvents

Analysis code in this course never loops over events in Python. It works on whole *columns*
(all muon pTs of a file at once) with array operations: awkward arrays for the jagged
collections, numpy for flat ones. This notebook selects good muons three ways — raw uproot +
awkward, then coffea's NanoEvents, which gives the columns physics meaning (four-vectors,
links to the generator record) — and finds the Z peak in real collision data.

Time: about 20 minutes.
""",
    ),
    ("code", FIND_NANOAOD),
    ("md", "## 1. Jagged arrays with uproot and awkward"),
    (
        "code",
        """
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
""",
    ),
    (
        "md",
        """
A *mask* is a boolean array with the same jagged structure. Indexing with it keeps the muons
where it is true, event by event — the number of events does not change:
""",
    ),
    (
        "code",
        """
good = (muons.pt > 20) & (abs(muons.eta) < 2.4) & muons.tightId & (muons.pfRelIso04_all < 0.15)
good_muons = muons[good]
print(ak.num(muons)[:10].tolist(), "->", ak.num(good_muons)[:10].tolist())
one_muon = ak.num(good_muons) == 1          # a flat mask: one entry per event
print(f"{ak.sum(one_muon)} of {len(muons)} events have exactly one good muon")
""",
    ),
    (
        "md",
        """
### Exercise 1.1

The W-mass analysis wants events with **exactly one** good muon; but it also vetoes events
with a *second, looser* muon (pT > 10 GeV, any isolation), which would signal a Z.
Build `w_like`: a flat boolean mask (one entry per event) that is true when the event has
exactly one good muon **and** no other muon with pT > 10 GeV.
""",
    ),
    (
        "exercise",
        """
w_like = None  # a boolean array of length len(muons)
""",
    ),
    (
        "solution",
        """
loose = muons.pt > 10
w_like = (ak.num(good_muons) == 1) & (ak.sum(loose, axis=1) == 1)
w_like
""",
    ),
    (
        "check",
        """
# the same selection written as a plain Python loop over events (slow, but obviously right)
expected = []
for ev in ak.to_list(muons):
    n_good = sum(m["pt"] > 20 and abs(m["eta"]) < 2.4 and m["tightId"]
                 and m["pfRelIso04_all"] < 0.15 for m in ev)
    n_loose = sum(m["pt"] > 10 for m in ev)
    expected.append(n_good == 1 and n_loose == 1)
assert ak.to_list(w_like) == expected
print(f"right: {sum(expected)} W-like events")
""",
    ),
    (
        "md",
        """
## 2. NanoEvents: columns with physics meaning

coffea's `NanoEventsFactory` reads the same file but knows the NanoAOD conventions:
`events.Muon` is a collection of Lorentz vectors (so `mu1 + mu2` is a four-vector sum), and
index branches like `Muon_genPartIdx` become links (`events.Muon.matched_gen`).
""",
    ),
    (
        "code",
        """
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
""",
    ),
    (
        "md",
        """
## 3. The Z peak in real collision data

`nano_dimuon.root` is 2018 collision data (DoubleMuon). Pair the good muons of each event
with `ak.combinations`, keep opposite-charge pairs and compute their invariant mass.
""",
    ),
    (
        "code",
        """
data = open_nanoevents(NANOAOD / "nano_dimuon.root")
m = data.Muon
sel = m[(m.pt > 15) & (abs(m.eta) < 2.4) & m.tightId & (m.pfRelIso04_all < 0.15)]
pairs = ak.combinations(sel, 2, fields=["first", "second"])
pairs = pairs[pairs.first.charge != pairs.second.charge]
mass = ak.flatten((pairs.first + pairs.second).mass)
print(f"{len(data)} events, run {data.run[0]}: opposite-sign masses {np.round(ak.to_numpy(mass), 1)}")
""",
    ),
    (
        "md",
        """
### Exercise 1.2

Check the four-vector arithmetic by hand. For massless muons,
$m^2 = 2\\,p_{T,1}\\,p_{T,2}\\,(\\cosh\\Delta\\eta - \\cos\\Delta\\phi)$.
Compute `mass_by_hand` from `pairs.first.pt`, `.eta`, `.phi` and `pairs.second.*` with numpy
functions (they work on awkward arrays), flattened like `mass`.
""",
    ),
    (
        "exercise",
        """
mass_by_hand = None
""",
    ),
    (
        "solution",
        """
a, b = pairs.first, pairs.second
m2 = 2 * a.pt * b.pt * (np.cosh(a.eta - b.eta) - np.cos(a.phi - b.phi))
mass_by_hand = ak.flatten(np.sqrt(m2))
mass_by_hand
""",
    ),
    (
        "check",
        """
# the muon mass (0.106 GeV) is negligible at 90 GeV: agreement to 0.1%
assert len(mass_by_hand) == len(mass) > 0
np.testing.assert_allclose(ak.to_numpy(mass_by_hand), ak.to_numpy(mass), rtol=1e-3)
assert all(80 < x < 100 for x in ak.to_numpy(mass)), "these are Z bosons"
print("right: the pairs are Z -> mu mu candidates")
""",
    ),
    (
        "md",
        """
## 4. A histogram

`hist` histograms have named axes; `mplhep` draws them in the CMS style.
""",
    ),
    (
        "code",
        """
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
""",
    ),
    (
        "md",
        """
**Take-away**: select with masks, never with loops; keep the event structure until you really
want a flat list (`ak.flatten`). Next: 02 puts this into a coffea *processor* and runs it on a
Dask cluster.
""",
    ),
]

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "00-setup": SETUP_00,
    "01-columnar-basics": COLUMNAR_01,
}
