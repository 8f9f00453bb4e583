# %% [markdown]
# # 13 — The W-like analysis: the m_W method, tested on the Z
#
# Before anyone trusts a measured m_W, the whole method is run where the answer is known: on
# Z → μμ events, one muon is **removed and treated as the neutrino** (its p_T is added to the
# MET), and the Z mass is fitted from the other muon's p_T and charge, with the same
# histograms, the same mass templates and the same fit as the W. This "W-like" analysis is how
# CMS validated its 2024 m_W measurement. Which muon is kept is decided by the event number
# (odd: the μ⁺, even: the μ⁻), so both charges are measured, like W⁺ and W⁻.
#
# The Z mass of the simulation is the LEP value, m_Z = 91.1876 GeV
# (`analysis.constants.MZ_REF`); your pseudo-data were generated at it (only the W mass of
# your sample is hidden). Time: about 30 minutes (about 1 minute of computing).

# %%
from analysis.course import course_sample, work_dir

WORK = work_dir()         # your own directory: $WMASS_COURSE_DIR, default course-work/
sample = course_sample()  # your blinded sample: the facility's shared one, or made here once (~15 s)
SAMPLES, DATASETS = sample.path, sample.datasets
print(f"{sample.student}'s sample: {SAMPLES}")

# %%
import contextlib
import io
import shlex

from analysis import cli
from analysis.constants import MZ_REF


def wmass(command: str) -> None:
    """Run a wmass command as in a terminal and show what it printed."""
    print("$ wmass", command)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        rc = cli.main(shlex.split(command))
    print(out.getvalue()[-1500:])
    assert rc == 0, f"wmass {command} failed ({rc})"


OUT = WORK / "wlike"
OUT.mkdir(exist_ok=True)

# %% [markdown]
# ## 1. The W-like histograms
#
# `--analysis wlike` runs `processors.WLikeProcessor`: two tight, isolated, opposite-charge
# muons with 60 < m(μμ) < 120 GeV; the kept muon's (p_T, η, charge, isolation) and the m_T of
# the kept muon with MET + the other muon. The histograms have exactly the axes of the W
# analysis. (One process is enough for this small selection: `--executor iterative`.)

# %%
wmass(f"histmaker --analysis wlike --datasets {DATASETS} --out {OUT / 'wlike.h5'} --executor iterative --quiet")

# %%
from analysis.io import read_histograms

hists = read_histograms(OUT / "wlike.h5")
for name in hists:
    ds = hists[name]
    print(f"{name:8s} read {ds.events_read:7,d} selected {ds.events_selected:6,d}")
data_h = hists["data"].histograms["nominal"]
print(data_h.axes.name)

# %% [markdown]
# ### Exercise 13.1 — the charge balance
#
# At the LHC, W⁺ outnumber W⁻ (notebook 02). In the W-like selection the kept charge is
# chosen by the event number. From the **data** histogram `data_h` (axes pt, eta, charge,
# passIso, mt; the charge axis has two bins, −1 and +1), compute the number of events with a
# kept μ⁻ and with a kept μ⁺ (`n_minus`, `n_plus`) and the asymmetry
# `asym = (n_plus - n_minus) / (n_plus + n_minus)`. What do you expect?

# %% tags=["exercise"]
n_minus, n_plus, asym = None, None, None
### BEGIN SOLUTION
by_charge = data_h.project("charge").values()
n_minus, n_plus = by_charge[0], by_charge[1]
asym = (n_plus - n_minus) / (n_plus + n_minus)
print(f"{n_minus:.0f} mu-, {n_plus:.0f} mu+: asymmetry {asym:+.3f}")
### END SOLUTION

# %% [markdown] tags=["solution"]
# Zero, within its statistical uncertainty sqrt((1 − A²)/N): a Z decays to one μ⁺ and one μ⁻,
# and the event number picks one of them at random, so there is no production asymmetry to see.

# %% tags=["check"]
import numpy as np

_v = data_h.values().sum(axis=(0, 1, 3, 4))  # [charge -1, +1], summed by hand
assert abs(n_minus - _v[0]) < 1e-9 and abs(n_plus - _v[1]) < 1e-9
assert abs(asym - (_v[1] - _v[0]) / _v.sum()) < 1e-12
_sigma = np.sqrt((1 - asym**2) / _v.sum())
assert abs(asym) < 3 * _sigma, f"a W-like selection has no charge asymmetry: {asym:+.3f} ± {_sigma:.3f}"
assert _v.sum() > 300, "the course sample has about a thousand W-like Z events"
print(f"right: asymmetry {asym:+.3f} ± {_sigma:.3f}, compatible with 0")

# %% [markdown]
# ## 2. The fit of the Z mass
#
# `setup-fit` turns the W-like histograms into a fit input with the Z mass as the parameter
# of interest, `mZ` (in MeV, from the ±100 MeV mass templates of the Z simulation), with all
# the systematic uncertainties of the W fit. The course sample is small: fit p_T × charge,
# summed over η.

# %%
wmass(f"setup-fit {OUT / 'wlike.h5'} --out {OUT / 'fitinput.h5'} --fitvar pt-charge")
wmass(f"fit {OUT / 'fitinput.h5'} --out {OUT / 'fitresult.h5'} --global-impacts")

# %% [markdown]
# ### Exercise 13.2 — does the method find the Z mass?
#
# Read the fit result (`fit.result.FitResult.read`) and store the fitted Z mass and its
# uncertainty, in MeV, in `mz_fit` and `mz_err`, and the pull against the generated mass,
# `pull = (mz_fit - MZ_REF * 1000) / mz_err`. Which uncertainty dominates (`global_impacts`)?
# How many times more Z events would a 10 MeV measurement need (statistics only)?

# %% tags=["exercise"]
mz_fit, mz_err, pull = None, None, None
### BEGIN SOLUTION
from fit.result import FitResult

res = FitResult.read(OUT / "fitresult.h5")
mz_fit, mz_err = res.pois["mZ"]["value"], res.pois["mZ"]["error"]
pull = (mz_fit - MZ_REF * 1000) / mz_err
print(f"m_Z = {mz_fit:.0f} ± {mz_err:.0f} MeV, pull {pull:+.2f}")
print(sorted(res.global_impacts["mZ"].items(), key=lambda kv: -kv[1])[:4])
print(f"{(mz_err / 10) ** 2:,.0f} times more Z events for 10 MeV")
### END SOLUTION

# %% tags=["check"]
import h5py

assert mz_fit is not None and mz_err is not None and pull is not None
with h5py.File(OUT / "fitresult.h5", "r") as _f:   # the file itself, read without FitResult
    _poi = dict(_f["pois/mZ"].attrs)
np.testing.assert_allclose(mz_fit, _poi["offset"] + _poi["scale"] * _poi["x"], rtol=1e-12)
np.testing.assert_allclose(mz_err, _poi["scale"] * _poi["x_error"], rtol=1e-9)
assert _poi["offset"] == MZ_REF * 1000, "the templates are centred on the generated Z mass"
assert 100 < mz_err < 1500, "about a thousand W-like Z events measure m_Z to a few hundred MeV"
np.testing.assert_allclose(pull, (mz_fit - MZ_REF * 1000) / mz_err, rtol=1e-9)
assert abs(pull) < 3, f"the W-like fit misses the Z mass by {pull:+.1f} sigma"
print(f"right: m_Z = {mz_fit:.0f} ± {mz_err:.0f} MeV, {pull:+.2f} sigma from the generated mass")

# %% [markdown]
# ## 3. Closure: a known shift is found exactly
#
# One pseudo-experiment within its uncertainty proves little (the fit could be biased by less
# than 430 MeV). A sharper test: fit pseudo-data that are the simulation's prediction with the
# Z mass moved by a known amount and no statistical fluctuation. `setup-fit --pseudodata
# massShift50MeV` makes them from the +50 MeV mass weights of the simulation.
#
# ### Exercise 13.3
#
# Make that fit input (`--out {OUT / 'shifted.h5'}`) and fit it; store the fitted shift
# `shift_fit = m_Z(fit) - MZ_REF * 1000` (MeV) in `shift_fit`. The fit must find +50 MeV to a
# small fraction of its uncertainty.

# %% tags=["exercise"]
shift_fit = None
### BEGIN SOLUTION
wmass(f"setup-fit {OUT / 'wlike.h5'} --out {OUT / 'shifted.h5'} --fitvar pt-charge --pseudodata massShift50MeV")
wmass(f"fit {OUT / 'shifted.h5'} --out {OUT / 'shifted-result.h5'}")
shifted = FitResult.read(OUT / "shifted-result.h5")
shift_fit = shifted.pois["mZ"]["value"] - MZ_REF * 1000
print(f"fitted shift {shift_fit:+.2f} ± {shifted.pois['mZ']['error']:.0f} MeV")
### END SOLUTION

# %% tags=["check"]
with h5py.File(OUT / "shifted.h5", "r") as _f:
    _meta = {k: str(v) for k, v in _f["meta"].attrs.items()}
assert "massShift50MeV" in _meta.get("args", ""), "fit the massShift50MeV pseudo-data"
assert shift_fit is not None
assert abs(shift_fit - 50.0) < 0.05 * mz_err, f"fitted shift {shift_fit:+.2f} MeV, injected +50"
assert abs(shift_fit - 50.0) < 5.0
print(f"right: +50 MeV injected, {shift_fit:+.2f} MeV fitted: the W-like fit closes")

# %% [markdown]
# **Going further**: fit the W-like channel and the W channel together (`wmass setup-fit
# hists.h5 wlike.h5`): nuisances the two share (the muon momentum scale, efficiencies, PDFs)
# are constrained by the Z, where the mass is known — the idea of the CMS analysis' W-like
# cross-check, turned into a calibration. What happens to the m_W uncertainty?
