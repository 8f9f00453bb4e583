"""The course, cell by cell: ``build.py`` turns each entry of ``NOTEBOOKS`` into an ``.ipynb``.

Kinds: ``md``, ``code``, ``exercise`` (the learner's cell), ``solution`` (collapsed, runs in
CI), ``check`` (asserts on the learner's answer).
"""

# Where the real NanoAOD test files are: $WMASS_NANOAOD, or tests/data/nanoaod of this checkout
# (relative to notebooks/, where Jupyter and nbmake start, or to the checkout's top).
FIND_NANOAOD = """
import os
from pathlib import Path

def find_nanoaod() -> Path:
    candidates = [os.environ.get("WMASS_NANOAOD"), "../tests/data/nanoaod",
                  "tests/data/nanoaod"]
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
The likelihood fit needs double precision: JAX computes in float32 unless told otherwise
(fits with ~5000 nuisances do not converge in float32). The fit switches JAX to float64 itself
(`fit.model.enable_x64`); check here that your JAX can.
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

# The generated sample every notebook from 02 on works with (made once, shared through WORK).
SAMPLES = WORKDIR + '''
from analysis.generate import generate_samples

SAMPLES = WORK / "samples"
if not (SAMPLES / "datasets.yaml").exists():  # ~30 s once; later notebooks reuse it
    generate_samples(SAMPLES, events=40_000, seed=1, mw=80.429)
DATASETS = SAMPLES / "datasets.yaml"
sorted(p.name for p in SAMPLES.iterdir())
'''

PROCESSOR_02 = [
    (
        "md",
        """
# 02 — A processor on a Dask cluster

A *processor* is the unit of analysis code coffea runs over many files: its `process(events)`
gets one chunk of events (NanoEvents) and returns histograms and counters; outputs of all
chunks are added up. Because chunks are independent, the same code runs in one process, on the
cores of a laptop, or on hundreds of batch nodes.

In this notebook you write a processor, run it on one chunk, then on a local Dask cluster, and
check that both give the same histogram. Time: about 25 minutes.

The sample is made by `wmass generate` (synthetic NanoAOD with a known truth; see
`docs/samples.md`): W → μν, backgrounds and pseudo-data at m_W = 80.429 GeV.
""",
    ),
    ("code", SAMPLES),
    (
        "code",
        """
from analysis.datasets import load_datasets

datasets = load_datasets(DATASETS)
for name, ds in datasets.items():
    print(f"{name:8s} {ds.process:8s} data={ds.is_data!s:5s} xsec={ds.xsec_pb} pb  {len(ds.files)} file(s)")
""",
    ),
    ("md", "## 1. A processor"),
    (
        "code",
        """
import awkward as ak
import hist
import numpy as np
from coffea import processor


class MuonPtProcessor(processor.ProcessorABC):
    \"\"\"Exactly one tight, isolated muon with pT > 26 GeV: its pT and charge.\"\"\"

    def process(self, events):
        dataset = events.metadata["dataset"]
        mu = events.Muon
        good = mu[(mu.pt > 26) & (abs(mu.eta) < 2.4) & mu.tightId & (mu.pfRelIso04_all < 0.15)]
        one = ak.num(good) == 1
        muon = ak.firsts(good[one])
        if events.metadata.get("is_data"):
            weight = np.ones(int(ak.sum(one)))
        else:
            weight = ak.to_numpy(events.genWeight[one]).astype(np.float64)
        h = hist.Hist(
            hist.axis.Regular(30, 26, 56, name="pt", label="muon pT [GeV]"),
            hist.axis.IntCategory([-1, 1], name="charge"),
            storage=hist.storage.Weight(),
        )
        h.fill(pt=ak.to_numpy(muon.pt), charge=ak.to_numpy(muon.charge), weight=weight)
        return {dataset: {"pt": h, "events_read": len(events), "selected": int(ak.sum(one))}}

    def postprocess(self, accumulator):
        return accumulator
""",
    ),
    (
        "md",
        """
Run it on the first 5000 events of the signal file, in this process. `open_events` is what
the framework uses to open a chunk (NanoAOD schema, `events.metadata` filled in).
""",
    ),
    (
        "code",
        """
from analysis.datasets import open_events

wmunu = datasets["wmunu"]
events = open_events(wmunu.files[0], entry_stop=5000, metadata={"dataset": "wmunu", "is_data": False})
one_chunk = MuonPtProcessor().process(events)
print(one_chunk["wmunu"]["selected"], "of 5000 events selected")
one_chunk["wmunu"]["pt"]
""",
    ),
    (
        "md",
        """
## 2. The same on a Dask cluster

`analysis.runner.cluster.dask_client()` starts a `LocalCluster` (one single-threaded worker process
per core, on 127.0.0.1) and `analysis.runner.run.run` splits every file into chunks, sends them to the
workers and adds the outputs up. Open the **dashboard** link it prints while it runs: the task
stream shows one bar per chunk, per worker. On a batch system or an analysis facility only the
`client` changes (`deploy/analysis-facility.md`).
""",
    ),
    (
        "code",
        """
from analysis.runner.cluster import dask_client
from analysis.runner.run import run

subset = {k: datasets[k] for k in ("wmunu", "data")}
with dask_client(workers=2) as client:
    print("dashboard:", client.dashboard_link)
    on_dask = run(MuonPtProcessor(), subset, client=client, chunksize=5000, progress=False)
print(f"{on_dask.events} events in {len(on_dask.chunks)} chunks on {on_dask.workers} workers, "
      f"{on_dask.events_per_second:,.0f} events/s")
print({w.split(':')[-1]: len(c) for w, c in on_dask.placement.items()}, "chunks per worker")
""",
    ),
    (
        "md",
        """
### Exercise 2.1

Chunking must not change the answer. Run the processor over the same two datasets with
`executor="iterative"` (one process, one chunk after another, `chunksize=7000`) and store the
result's `output` in `iterative`. The check compares every bin with the Dask result.
""",
    ),
    ("exercise", "iterative = None  # run(..., executor='iterative', ...).output"),
    (
        "solution",
        """
iterative = run(MuonPtProcessor(), subset, executor="iterative", chunksize=7000, progress=False).output
""",
    ),
    (
        "check",
        """
for name in subset:
    a, b = iterative[name]["pt"], on_dask.output[name]["pt"]
    np.testing.assert_allclose(a.values(), b.values(), rtol=1e-12)
    np.testing.assert_allclose(a.variances(), b.variances(), rtol=1e-12)
    assert iterative[name]["events_read"] == on_dask.output[name]["events_read"]
print("right: same histograms, whatever the chunking and the executor")
""",
    ),
    (
        "md",
        """
## 3. Look at it

MC histograms are in units of generator weight: scale them by cross section × luminosity /
sum of weights to compare with data.
""",
    ),
    (
        "code",
        """
import matplotlib.pyplot as plt
import mplhep

lumi = load_datasets(DATASETS).lumi_pb
sumw = datasets["wmunu"].sumw
scale = datasets["wmunu"].xsec_pb * lumi / sumw
plt.style.use(mplhep.style.CMS)
fig, ax = plt.subplots(figsize=(7, 5))
mplhep.histplot(on_dask.output["wmunu"]["pt"][:, sum] * scale, ax=ax, label="W → μν (MC)")
mplhep.histplot(on_dask.output["data"]["pt"][:, sum], ax=ax, histtype="errorbar", color="k", label="pseudo-data")
ax.legend()
print(f"lumi {lumi:.4g} /pb, W scale factor {scale:.3g}")
""",
    ),
    (
        "md",
        """
### Exercise 2.2

The W⁺ and W⁻ are not produced equally at the LHC (more u than d quarks in the proton).
From the **data** histogram, compute the charge asymmetry
`asym = (N+ - N-) / (N+ + N-)` of the selected muons and store it in `asym`.
""",
    ),
    ("exercise", "asym = None"),
    (
        "solution",
        """
h = on_dask.output["data"]["pt"]
n_minus, n_plus = h[:, hist.loc(-1)].sum().value, h[:, hist.loc(1)].sum().value
asym = (n_plus - n_minus) / (n_plus + n_minus)
asym
""",
    ),
    (
        "check",
        """
_vals = on_dask.output["data"]["pt"].values().sum(axis=0)  # [charge -1, +1]
_n = _vals.sum()
assert abs(asym - (_vals[1] - _vals[0]) / _n) < 1e-12
assert 0.05 < asym < 0.4, "W+ outnumber W- at the LHC"
print(f"right: asymmetry {asym:.3f} ± {np.sqrt((1 - asym**2) / _n):.3f}")
""",
    ),
]

TENSORS_03 = [
    (
        "md",
        """
# 03 — Systematics as tensors

Every systematic uncertainty of the W-mass analysis is an **event weight variation**: 103 PDF
replicas, 9 QCD scales, 21 W-mass shifts, hundreds of efficiency eigenvectors... The old way is
one histogram per variation: the bin of each event is looked up hundreds of times. The way of
this framework (and of the CMS analysis): one histogram with an extra, last *variation axis*,
filled as a tensor — one bin lookup per event, then a contiguous vector of weights added.

Time: about 25 minutes.
""",
    ),
    ("code", SAMPLES),
    (
        "code",
        """
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
""",
    ),
    ("md", "## 1. One histogram per variation vs one tensor fill"),
    (
        "code",
        """
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
""",
    ),
    (
        "md",
        """
Same numbers, one bin lookup per event. On the full analysis (17,280 bins × 103 PDFs and
hundreds of other variations) this is what keeps the event loop fast and the memory small:
see `benchmarks/histmaker.py` and the seminar's table (×4 from the tensor axis alone).

## 2. What a variation does: the W-mass templates

`MEParamWeight` reweights the W line shape to another mass. Its effect on the muon pT is
tiny — a few per mille around the Jacobian peak at m_W/2 — and that is all the fit has to
measure m_W with.
""",
    ),
    (
        "code",
        """
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
""",
    ),
    (
        "md",
        """
### Exercise 3.1

The PDF uncertainty of a Hessian PDF set (NNPDF3.1 Hessian: replica 0 is the central value,
1-100 the eigenvector shifts, 101-102 the α_S variations) is, per bin,
`sqrt(sum_{i=1..100} (h_i - h_0)^2)`.

From `h_pdf` (pt × eta × 103), compute `pdf_unc_pt`: the PDF uncertainty of the **pT
distribution summed over eta** (30 numbers). Careful: sum over eta *before* combining the
replicas — why?
""",
    ),
    ("exercise", "pdf_unc_pt = None"),
    (
        "solution",
        """
v = h_pdf.values().sum(axis=1)              # [pt, 103]: project first, the replicas are correlated
pdf_unc_pt = np.sqrt(((v[:, 1:101] - v[:, [0]]) ** 2).sum(axis=1))
pdf_unc_pt
""",
    ),
    (
        "check",
        """
_ref = []
for b in range(30):
    _n = loop[b].sum(axis=0)                # [103] for this pt bin, summed over eta (from the loop fill)
    _ref.append(np.sqrt(sum((_n[i] - _n[0]) ** 2 for i in range(1, 101))))
np.testing.assert_allclose(pdf_unc_pt, _ref, rtol=1e-9)
print("right: relative PDF uncertainty per pT bin", np.round(pdf_unc_pt / loop[:, :, 0].sum(axis=1), 4))
""",
    ),
    (
        "md",
        """
## 3. The real processor

`WMassProcessor` fills the 5D histogram (pt, eta, charge, passIso, mT) with every variation at
once. Run it on the signal with the iterative executor and look at what comes out:
""",
    ),
    (
        "code",
        """
from analysis.histmaker import make_processor
from analysis.runner.run import run

proc = make_processor("wmass", datasets, corrections=SAMPLES / "corrections.json")
out = run(proc, {"wmunu": datasets["wmunu"]}, executor="iterative", progress=False).output
for name, h in out["wmunu"]["histograms"].items():
    print(f"{name:14s} {h.axes.name[-1]:14s} {h.shape[-1]:4d} variations, {h.values().nbytes / 1e6:6.1f} MB")
""",
    ),
]

FIT_04 = [
    (
        "md",
        """
# 04 — The fit: likelihood, pulls, impacts

The measurement is a binned profile-likelihood fit (the seminar's formula):

$$ -\\ln L = \\sum_{b} \\left(n_b(\\theta) - d_b \\ln n_b(\\theta)\\right)
+ \\tfrac12 \\sum_k \\theta_k^2, \\qquad
n_b = \\sum_p n_{bp}^{0} \\prod_k \\kappa_{bpk}^{\\theta_k} $$

Every systematic is a nuisance parameter θ_k with a unit Gaussian constraint; m_W is an
unconstrained parameter that interpolates between the ±100 MeV templates. `fit` builds this
from templates (`FitInputBuilder`), minimises it with a trust-region Newton method (exact
Hessian, float64) and reports the POI, the covariance, pulls, impacts and goodness of fit.

Time: about 25 minutes.
""",
    ),
    ("md", "## 1. A small W-mass model"),
    (
        "code",
        """
import hist
import numpy as np

from fit.fitter import fit
from fit.builder import FitInputBuilder

MW_REF = 80379.0
eta = hist.axis.Regular(4, -2.4, 2.4, name="eta")
pt = hist.axis.Regular(10, 26, 56, name="pt")
c = pt.centers

def w_spectrum(mw):  # a Jacobian peak at ~m_W/2 on a flat tail
    return np.ones(4)[:, None] * (1e4 * np.exp(-0.5 * ((c - 40.0 * mw / MW_REF) / 6.0) ** 2) + 500)

def h(values):
    out = hist.Hist(eta, pt)
    out[...] = values
    return out

def build(data, shift_templates=True):
    w0, up, dn = w_spectrum(MW_REF), w_spectrum(MW_REF + 100), w_spectrum(MW_REF - 100)
    z = np.ones(4)[:, None] * 800 * np.exp(-(c - 26) / 15)
    q = np.ones(4)[:, None] * 1500 * np.exp(-(c - 26) / 8)
    b = FitInputBuilder()
    b.add_channel("wmunu", h(data))
    b.add_process("wmunu", "Wmunu", h(w0), signal=True)
    b.add_process("wmunu", "Zmumu", h(z))
    b.add_process("wmunu", "QCD", h(q))
    b.add_poi("mW", variations={("wmunu", "Wmunu"): (h(up), h(dn))}, offset=MW_REF, scale=100.0, unit="MeV")
    b.add_norm("lumi", ["Wmunu", "Zmumu"], 1.017, group="luminosity")
    b.add_norm("QCD_norm", ["QCD"], 1.3, group="nonprompt")
    for i in range(4):
        eff = w0.copy()
        eff[i] *= 1 + 0.01 * (c - 40) / 15  # an efficiency that tilts the pT spectrum in one eta slice
        b.add_systematic(f"effStat_eta{i}", {("wmunu", "Wmunu"): h(eff)}, group="muon_eff")
    return b.build(), w0 + z + q, w0, up

_, expected, w0, up = build(np.ones((4, 10)))
TRUE_SHIFT = 30.0  # MeV: the pseudo-data have m_W = 80409 MeV
truth = expected + TRUE_SHIFT / 100 * (up - w0)
data = np.random.default_rng(1).poisson(truth).astype(float)
fit_input, *_ = build(data)
print(fit_input.parameters)
""",
    ),
    (
        "code",
        """
result = fit(fit_input, impacts=True, global_impacts=True)
print(result.summary())
""",
    ),
    (
        "md",
        """
## 2. Pulls and constraints

A *pull* is how far the fit moved a nuisance from its prior (in units of its prior width); a
*constraint* is its post-fit width over the prior width. A constraint well below 1 means the
data measure that nuisance better than the prior did — worth understanding before unblinding.
""",
    ),
    (
        "code",
        """
for name, p, cns in zip(result.parameters, result.pulls, result.constraints):
    if np.isfinite(p):
        print(f"{name:14s} pull {p:+.2f}   constraint {cns:.2f}")
""",
    ),
    (
        "md",
        """
## 3. Impacts

The *impact* of a nuisance on m_W is how much m_W moves when that nuisance is shifted by its
post-fit uncertainty, the others re-fitted: `cov[mW, k] / sigma_k`. *Global impacts* split the
total m_W uncertainty into sources that add in quadrature (data statistics, each group).
""",
    ),
    (
        "code",
        """
impacts = result.impacts["mW"]
order = np.argsort(-np.abs(impacts))
for k in order:
    if result.parameters[k] != "mW":
        print(f"{result.parameters[k]:14s} {impacts[k]:+7.2f} MeV")
glob = result.global_impacts["mW"]
print({k: round(v, 2) for k, v in glob.items()})
""",
    ),
    (
        "md",
        """
### Exercise 4.1

Global impacts add up in quadrature to the total uncertainty. Check it: compute `quad_sum`,
the quadrature sum of every entry of `glob` except `"total"`, and compare with `glob["total"]`
and with the fit's own error `result.pois["mW"]["error"]` (from the Hessian: the two agree to a
fraction of a per cent, the global impacts linearise the response to the data).
""",
    ),
    ("exercise", "quad_sum = None"),
    (
        "solution",
        """
quad_sum = float(np.sqrt(sum(v**2 for k, v in glob.items() if k != "total")))
quad_sum, result.pois["mW"]["error"]
""",
    ),
    (
        "check",
        """
assert abs(quad_sum - glob["total"]) < 1e-9 * glob["total"]
assert abs(quad_sum - result.pois["mW"]["error"]) < 0.01 * result.pois["mW"]["error"]
print(f"right: {quad_sum:.3f} MeV in quadrature = the total uncertainty")
""",
    ),
    (
        "md",
        """
### Exercise 4.2 — does the fit measure what it should?

A fit on the **Asimov** data set (the expectation itself, no fluctuations) must give back the
nominal value exactly, and its error is the *expected* uncertainty. Then, the real test: many
pseudo-experiments at a known mass must give a pull distribution `(m_fit - m_true)/sigma` with
mean 0 and width 1.

Fit 40 Poisson pseudo-data sets drawn from `truth` (seed them with
`np.random.default_rng(100 + i)`), and store the pulls in the array `pulls` (40 numbers).
""",
    ),
    ("exercise", "pulls = None"),
    (
        "solution",
        """
pulls = []
for i in range(40):
    toy = np.random.default_rng(100 + i).poisson(truth).astype(float)
    r = fit(build(toy)[0])
    pulls.append((r.pois["mW"]["value"] - (MW_REF + TRUE_SHIFT)) / r.pois["mW"]["error"])
pulls = np.array(pulls)
print(f"mean {pulls.mean():+.2f}, width {pulls.std(ddof=1):.2f}")
""",
    ),
    (
        "check",
        """
asimov = fit(fit_input, data="asimov")
assert abs(asimov.pois["mW"]["value"] - MW_REF) < 1e-6   # the expectation gives back the nominal
assert len(pulls) == 40
assert abs(np.mean(pulls)) < 3 / np.sqrt(40), "biased: the mean pull is more than 3 sigma from 0"
assert 0.6 < np.std(pulls, ddof=1) < 1.4, "the errors do not describe the spread"
print("right: an unbiased fit with correct uncertainties")
""",
    ),
    (
        "md",
        """
## 4. Browse it

`analysis.report.plots.nuisance_page` writes the interactive page of pulls, constraints and impacts
the report uses (searchable, sortable, fine with 5000 nuisances), and `wmass report` a whole
site. Write the fit result and make the site:
""",
    ),
    (
        "code",
        WORKDIR
        + """
from analysis.report import write_report

fit_input.write(WORK / "nb04-fitinput.h5")
result.write(WORK / "nb04-fitresult.h5", meta={**result.meta, "inputs": [str(WORK / "nb04-fitinput.h5")]})
page = write_report(WORK / "nb04-fitresult.h5", out=WORK / "site", formats=("png",))
print("open", page)
""",
    ),
]

LONG_05 = [
    (
        "md",
        """
# 05 — Long exercise: measure the W mass

You are given pseudo-data generated with an **unknown** W mass (well — `truth.json` knows it;
do not peek until the end). Measure it, end to end, with the same four commands the real
analysis uses:

1. `wmass histmaker` — fill histograms with every systematic variation (on Dask);
2. `wmass setup-fit` — post-process them (nonprompt background from data, smoothing,
   systematic groups) into a fit input;
3. `wmass fit` — the profile-likelihood fit with impacts;
4. `wmass report` — a browsable site of the result;

then compare with the truth. Each step is run here from Python through the CLI (exactly what
you would type in a terminal) so the notebook records it.

Time: about 45 minutes (a few minutes of computing on the course sample).
""",
    ),
    ("code", SAMPLES),
    (
        "code",
        """
import shlex
from analysis import cli

def wmass(command: str) -> None:
    print("$ wmass", command)
    rc = cli.main(shlex.split(command))
    assert rc == 0, f"wmass {command} failed ({rc})"

OUT = WORK / "long-exercise"
OUT.mkdir(exist_ok=True)
""",
    ),
    ("md", "## 1. Histograms"),
    (
        "code",
        """
wmass(f"histmaker --analysis wmass --datasets {DATASETS} --out {OUT / 'hists.h5'} --workers 2 --quiet")
""",
    ),
    (
        "code",
        """
from analysis.io import read_histograms

hists = read_histograms(OUT / "hists.h5")
for name in hists:
    ds = hists[name]
    print(f"{name:8s} read {ds.events_read:7,d} selected {ds.events_selected:6,d}")
print("luminosity", hists.lumi_pb, "/pb")
""",
    ),
    ("md", "## 2. Fit input and fit"),
    (
        "code",
        """
# the course sample is small (40k MC events): fit the muon pT x charge, summed over eta, so
# that every bin has events; with millions of events use the default pt-eta-charge
wmass(f"setup-fit {OUT / 'hists.h5'} --out {OUT / 'fitinput.h5'} --fitvar pt-charge")
wmass(f"fit {OUT / 'fitinput.h5'} --out {OUT / 'fitresult.h5'} --impacts --global-impacts")
""",
    ),
    (
        "md",
        """
### Exercise 5.1

Read the fit result (`fit.result.FitResult.read`) and store the measured W mass and its
uncertainty, in MeV, in `mw_fit` and `mw_err`. Which groups of systematics dominate the
uncertainty (`global_impacts`)?
""",
    ),
    ("exercise", "mw_fit, mw_err = None, None"),
    (
        "solution",
        """
from fit.result import FitResult

res = FitResult.read(OUT / "fitresult.h5")
mw_fit, mw_err = res.pois["mW"]["value"], res.pois["mW"]["error"]
print(res.summary())
print(sorted(res.global_impacts["mW"].items(), key=lambda kv: -kv[1])[:5])
""",
    ),
    (
        "md",
        """
## 3. Unblind: compare with the truth

The generator wrote the true mass of the pseudo-data into `truth.json` (`mw_data_gev`).
""",
    ),
    (
        "check",
        """
import json
truth_mev = 1000 * json.loads((SAMPLES / "truth.json").read_text())["mw_data_gev"]
pull = (mw_fit - truth_mev) / mw_err
print(f"measured {mw_fit:.0f} ± {mw_err:.0f} MeV, true {truth_mev:.0f} MeV: pull {pull:+.2f}")
assert abs(pull) < 3, "the measurement is more than 3 sigma from the truth"
""",
    ),
    ("md", "## 4. The report"),
    (
        "code",
        """
wmass(f"report {OUT / 'fitresult.h5'} {OUT / 'hists.h5'} --out {WORK / 'site'} --formats png")
print("open", WORK / "site" / "index.html", "in a browser")
""",
    ),
    (
        "md",
        """
**Going further** (the long exercise of a school runs for days):

- generate a bigger sample (`--events 2e6`), fit in pt-eta-charge (the default `--fitvar`),
  and watch the uncertainty shrink as 1/sqrt(N) until the systematics take over (global
  impacts);
- regenerate pseudo-data at another `--mw`: is the fit linear over ±100 MeV?
- run the histmaker on the SLURM recipe (`--cluster deploy/slurm.yaml`) or with `root://` URLs
  in `datasets.yaml` (`deploy/analysis-facility.md`);
- fit with `--minimizer minuit` and compare.
""",
    ),
]

NOTEBOOKS.update(
    {
        "02-processor-on-dask": PROCESSOR_02,
        "03-systematics-as-tensors": TENSORS_03,
        "04-the-fit": FIT_04,
        "05-long-exercise-mw": LONG_05,
    }
)
