# %% [markdown]
# # 02 — A processor on a Dask cluster
#
# A *processor* is the unit of analysis code coffea runs over many files: its `process(events)`
# gets one chunk of events (NanoEvents) and returns histograms and counters; outputs of all
# chunks are added up. Because chunks are independent, the same code runs in one process, on the
# cores of a laptop, or on hundreds of batch nodes.
#
# In this notebook you write a processor, run it on one chunk, then on a local Dask cluster, and
# check that both give the same histogram. Time: about 25 minutes.
#
# The sample is made by `wmass generate` (synthetic NanoAOD with a known truth; see
# `docs/samples.md`): W → μν, backgrounds and pseudo-data at a W mass hidden from you (your
# own, derived from your name and the course secret: the long exercise measures it).

# %%
from analysis.course import course_sample, work_dir

WORK = work_dir()         # your own directory: $WMASS_COURSE_DIR, default course-work/
sample = course_sample()  # your blinded sample: the facility's shared one, or made here once (~15 s)
SAMPLES, DATASETS = sample.path, sample.datasets
print(f"{sample.student}'s sample: {SAMPLES}")
sorted(p.name for p in SAMPLES.iterdir())

# %%
from analysis.datasets import load_datasets

datasets = load_datasets(DATASETS)
for name, ds in datasets.items():
    print(f"{name:8s} {ds.process:8s} data={ds.is_data!s:5s} xsec={ds.xsec_pb} pb  {len(ds.files)} file(s)")

# %% [markdown]
# ## 1. A processor

# %%
import awkward as ak
import hist
import numpy as np
from coffea import processor


class MuonPtProcessor(processor.ProcessorABC):
    """Exactly one tight, isolated muon with pT > 26 GeV: its pT and charge."""

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


# %% [markdown]
# Run it on the first 5000 events of the signal file, in this process. `open_events` is what
# the framework uses to open a chunk (NanoAOD schema, `events.metadata` filled in).

# %%
from analysis.datasets import open_events

wmunu = datasets["wmunu"]
events = open_events(wmunu.files[0], entry_stop=5000, metadata={"dataset": "wmunu", "is_data": False})
one_chunk = MuonPtProcessor().process(events)
print(one_chunk["wmunu"]["selected"], "of 5000 events selected")
one_chunk["wmunu"]["pt"]

# %% [markdown]
# ## 2. The same on a Dask cluster
#
# `analysis.course.course_client()` gives a Dask client: on your laptop it starts a
# `LocalCluster` (two single-threaded worker processes); at an analysis facility it connects to
# the facility's scheduler (`WMASS_COURSE_SCHEDULER`) or uses a client you already made in this
# notebook. `analysis.runner.run.run` splits every file into chunks, sends them to the workers
# and adds the outputs up. Open the **dashboard** link it prints while it runs (behind
# JupyterHub the link goes through the hub's proxy): the task stream shows one bar per chunk,
# per worker. On a batch system only the `client` changes (`deploy/analysis-facility.md`).

# %%
from analysis.course import course_client, dashboard_link
from analysis.runner.run import run

subset = {k: datasets[k] for k in ("wmunu", "data")}
with course_client(workers=2) as client:
    print("dashboard:", dashboard_link(client))
    on_dask = run(MuonPtProcessor(), subset, client=client, chunksize=20_000, progress=False)
print(f"{on_dask.events} events in {len(on_dask.chunks)} chunks on {on_dask.workers} workers, "
      f"{on_dask.events_per_second:,.0f} events/s")
print({w.split(':')[-1]: len(c) for w, c in on_dask.placement.items()}, "chunks per worker")

# %% [markdown]
# ### Exercise 2.1
#
# Chunking must not change the answer. Run the processor over the same two datasets with
# `executor="iterative"` (one process, one chunk after another, `chunksize=30_000`) and store the
# result's `output` in `iterative`. The check compares every bin with the Dask result.

# %% tags=["exercise"]
iterative = None  # run(..., executor='iterative', ...).output
### BEGIN SOLUTION
iterative = run(MuonPtProcessor(), subset, executor="iterative", chunksize=30_000, progress=False).output
### END SOLUTION

# %% tags=["check"]
for name in subset:
    a, b = iterative[name]["pt"], on_dask.output[name]["pt"]
    np.testing.assert_allclose(a.values(), b.values(), rtol=1e-12)
    np.testing.assert_allclose(a.variances(), b.variances(), rtol=1e-12)
    assert iterative[name]["events_read"] == on_dask.output[name]["events_read"]
print("right: same histograms, whatever the chunking and the executor")

# %% [markdown]
# ## 3. Look at it
#
# MC histograms are in units of generator weight: scale them by cross section × luminosity /
# sum of weights to compare with data.

# %%
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

# %% [markdown]
# ### Exercise 2.2
#
# The W⁺ and W⁻ are not produced equally at the LHC (more u than d quarks in the proton).
# From the **data** histogram, compute the charge asymmetry
# `asym = (N+ - N-) / (N+ + N-)` of the selected muons and store it in `asym`.

# %% tags=["exercise"]
asym = None
### BEGIN SOLUTION
h = on_dask.output["data"]["pt"]
n_minus, n_plus = h[:, hist.loc(-1)].sum().value, h[:, hist.loc(1)].sum().value
asym = (n_plus - n_minus) / (n_plus + n_minus)
asym
### END SOLUTION

# %% tags=["check"]
_vals = on_dask.output["data"]["pt"].values().sum(axis=0)  # [charge -1, +1]
_n = _vals.sum()
assert abs(asym - (_vals[1] - _vals[0]) / _n) < 1e-12
assert 0.05 < asym < 0.4, "W+ outnumber W- at the LHC"
print(f"right: asymmetry {asym:.3f} ± {np.sqrt((1 - asym**2) / _n):.3f}")
