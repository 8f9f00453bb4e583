# %% [markdown]
# # 00 — Set-up check (pre-exercise)
#
# Before the school starts, make sure your environment works: this notebook checks the Python
# version and the analysis stack, that the `wmass` command is installed, and opens a real CMS
# NanoAOD file. Every cell should run without error in a few seconds. If one fails, the message
# says what to install; ask on the course channel with the full error.
#
# Run it top to bottom (*Run → Run All Cells*).

# %% [markdown]
# ## 1. Python and the packages of the stack

# %%
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

# %% [markdown]
# The likelihood fit needs double precision: JAX computes in float32 unless told otherwise
# (fits with ~5000 nuisances do not converge in float32). The fit switches JAX to float64 itself
# (`fit.model.enable_x64`); check here that your JAX can.

# %%
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp

x = jnp.ones(3)
print(x.dtype, jax.devices())
assert x.dtype == jnp.float64

# %% [markdown]
# ## 2. The `wmass` command

# %%
import shutil
import subprocess
from pathlib import Path

wmass = shutil.which("wmass") or str(Path(sys.executable).parent / "wmass")
out = subprocess.run([wmass, "--help"], capture_output=True, text=True, check=True)
print(out.stdout)
assert "histmaker" in out.stdout and "fit" in out.stdout

# %% [markdown]
# ## 3. Open a real NanoAOD file
#
# NanoAOD is a ROOT file with one `TTree` called `Events`: one entry per collision, one branch
# per quantity. Collections of objects (muons, jets...) are *jagged*: `nMuon` says how many
# muons an event has and `Muon_pt`, `Muon_eta`, ... hold their properties.
# `uproot` reads ROOT files with no ROOT installed.

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

# %%
import uproot

f = uproot.open(NANOAOD / "nano_dy.root")
events = f["Events"]
print(f"{events.num_entries} events, {len(events.keys())} branches")
muon_branches = [k for k in events.keys() if k.startswith("Muon_")]
print(len(muon_branches), "muon branches, e.g.", muon_branches[:8])
events.show(filter_name=["nMuon", "Muon_pt", "Muon_eta", "Muon_tightId", "genWeight"])

# %%
pt = events["Muon_pt"].array()
print(pt)          # one list of muon pTs per event
print(pt.type)     # 40 * var * float32: 40 events, a variable number of muons each

# %% [markdown]
# ### Exercise 0.1
#
# How many events of `nano_tt_v12.root` (a ttbar sample, NanoAOD v12) have **at least one muon**?
# Store the answer in `n_with_muon` (an `int`). Hint: read the `nMuon` branch.

# %% tags=["exercise"]
n_with_muon = None  # replace with your code
### BEGIN SOLUTION
with uproot.open(NANOAOD / "nano_tt_v12.root") as tt:
    n_muon = tt["Events"]["nMuon"].array(library="np")
n_with_muon = int((n_muon > 0).sum())
n_with_muon
### END SOLUTION

# %% tags=["check"]
import numpy as np
with uproot.open(NANOAOD / "nano_tt_v12.root") as tt:
    _n = tt["Events"]["nMuon"].array(library="np")
assert n_with_muon == np.count_nonzero(_n), "count the events with nMuon > 0"
print(f"right: {n_with_muon} of {len(_n)} ttbar events have a muon")

# %% [markdown]
# ## 4. An empty file is not an error
#
# Real productions contain files where no event passed the skim. `nano_dy_empty.root` has an
# `Events` tree with zero entries: reading it must give empty arrays, not crash.

# %%
with uproot.open(NANOAOD / "nano_dy_empty.root") as empty:
    arr = empty["Events"]["Muon_pt"].array()
print(len(arr), "events")
assert len(arr) == 0
print("Your environment is ready. Next: 01-columnar-basics.")
