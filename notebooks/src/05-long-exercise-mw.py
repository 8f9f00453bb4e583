# %% [markdown]
# # 05 — Long exercise: measure the W mass
#
# Your pseudo-data were generated at a W mass **nobody in the room knows**: it is derived from
# your name and a course secret that the facilitator keeps until the last day (within ±50 MeV
# of the simulation's reference; how: `analysis/course/blinding.py`). The sample's `truth.json`
# says `"blinded"` where the mass would be. Measure it, end to end, with the same four commands
# the real analysis uses:
#
# 1. `wmass histmaker` — fill histograms with every systematic variation (on Dask);
# 2. `wmass setup-fit` — post-process them (nonprompt background from data, smoothing,
#    systematic groups) into a fit input;
# 3. `wmass fit` — the profile-likelihood fit with impacts;
# 4. `wmass report` — a browsable site of the result;
#
# Until you unblind, the notebook shows m_W **blinded**: the fitted value minus a hidden offset.
# You can study everything else (uncertainties, pulls, impacts, goodness of fit) without
# knowing the answer, as a real analysis does. Each step is run here from Python through the
# CLI (exactly what you would type in a terminal) so the notebook records it.
#
# Time: about 45 minutes (a few minutes of computing on the course sample).

# %%
from analysis.course import course_sample, work_dir

WORK = work_dir()         # your own directory: $WMASS_COURSE_DIR, default course-work/
sample = course_sample()  # your blinded sample: the facility's shared one, or made here once (~15 s)
SAMPLES, DATASETS = sample.path, sample.datasets
print(f"{sample.student}'s sample: {SAMPLES}")
sorted(p.name for p in SAMPLES.iterdir())

# %%
import contextlib
import io
import os
import shlex
from analysis import cli
from analysis.course import blind_text, dashboard_link

def wmass(command: str) -> None:
    """Run a wmass command; what it prints is shown with every fitted m_W blinded."""
    print("$ wmass", command)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        rc = cli.main(shlex.split(command))
    print(blind_text(out.getvalue(), sample))
    assert rc == 0, f"wmass {command} failed ({rc})"

OUT = WORK / "long-exercise"
OUT.mkdir(exist_ok=True)
# at a facility: the facility's Dask scheduler; on a laptop: a local cluster of 2 workers
SCHEDULER = os.environ.get("WMASS_COURSE_SCHEDULER")
WHERE = f"--scheduler {SCHEDULER}" if SCHEDULER else "--workers 2"

# %% [markdown]
# ## 1. Histograms
#
# At a facility with a Dask Gateway (or with a client you made yourself), the histmaker runs
# from Python on that cluster (`course_client()`); otherwise through the command line.

# %%
from analysis.course import course_client, dask_backend

if dask_backend() in ("gateway", "client"):
    from analysis.histmaker import histmaker

    with course_client(workers=2) as client:
        print("on", dask_backend(), "- dashboard:", dashboard_link(client))
        histmaker("wmass", DATASETS, OUT / "hists.h5", client=client, progress=False)
else:
    wmass(f"histmaker --analysis wmass --datasets {DATASETS} --out {OUT / 'hists.h5'} {WHERE} --quiet")

# %%
from analysis.io import read_histograms

hists = read_histograms(OUT / "hists.h5")
for name in hists:
    ds = hists[name]
    print(f"{name:8s} read {ds.events_read:7,d} selected {ds.events_selected:6,d}")
print("luminosity", hists.lumi_pb, "/pb")

# %% [markdown]
# ## 2. Fit input and fit

# %%
# the course sample is small (200k MC events): fit the muon pT x charge, summed over eta, so
# that every bin has events; with millions of events use the default pt-eta-charge
wmass(f"setup-fit {OUT / 'hists.h5'} --out {OUT / 'fitinput.h5'} --fitvar pt-charge")
wmass(f"fit {OUT / 'fitinput.h5'} --out {OUT / 'fitresult.h5'} --impacts --global-impacts")

# %% [markdown]
# ### Exercise 5.1
#
# Read the fit result (`fit.result.FitResult.read`) and store the measured W mass and its
# uncertainty, in MeV, in `mw_fit` and `mw_err`. Do not print `mw_fit`: print the blinded value
# `blinded_mw(mw_fit, sample)` instead. Which groups of systematics dominate the uncertainty
# (`global_impacts`)?

# %% tags=["exercise"]
from analysis.course import blinded_mw

mw_fit, mw_err = None, None
### BEGIN SOLUTION
from fit.result import FitResult

res = FitResult.read(OUT / "fitresult.h5")
mw_fit, mw_err = res.pois["mW"]["value"], res.pois["mW"]["error"]
print(f"blinded m_W: {blinded_mw(mw_fit, sample):+.1f} ± {mw_err:.1f} MeV")
print(sorted(res.global_impacts["mW"].items(), key=lambda kv: -kv[1])[:5])
### END SOLUTION

# %% tags=["check"]
import h5py
import numpy as np

assert mw_fit is not None and mw_err is not None, "store the fit's m_W and error (MeV)"
with h5py.File(OUT / "fitresult.h5", "r") as _f:   # the file itself, read without FitResult
    _poi = dict(_f["pois/mW"].attrs)
# the fit's parameter x is in units of the +-100 MeV templates: m_W = offset + scale * x
np.testing.assert_allclose(mw_fit, _poi["offset"] + _poi["scale"] * _poi["x"], rtol=1e-12)
np.testing.assert_allclose(mw_err, _poi["scale"] * _poi["x_error"], rtol=1e-9)
assert 5 < mw_err < 300, "a 200k-event sample measures m_W to about 100-150 MeV"
print(f"right: blinded m_W = {blinded_mw(mw_fit, sample):+.1f} ± {mw_err:.1f} MeV")

# %% [markdown]
# ## 3. Hand in your result
#
# Write your result file (your name, m_W and its error; no truth in it) and give it to the
# facilitator (at a facility: copy it to the hand-in directory they name). On the last day
# `wmass course collect` unblinds the whole class at once: a pull per student and the
# combination.

# %%
from analysis.course import student_slug, write_result

RESULT = write_result(WORK / f"result-{student_slug(sample.student)}.json", sample, mw_fit, mw_err,
                      fitresult=OUT / "fitresult.h5")
print("hand in", RESULT)

# %% [markdown]
# ## 4. Unblinding (only when the facilitator says so)
#
# Unblinding needs the course secret (`WMASS_COURSE_SECRET`), revealed on the last day;
# with a wrong secret `unblind` refuses. Working alone, your sample was made with the
# practice secret and unblinds without one. Is your measurement within its uncertainty of
# the truth?

# %%
from analysis.course import unblind

truth_mev = unblind(sample)
if sample.practice:  # working alone: the practice secret unblinds your report site too
    from analysis.course import PRACTICE_SECRET

    os.environ.setdefault("WMASS_COURSE_SECRET", PRACTICE_SECRET)
pull = (mw_fit - truth_mev) / mw_err
print(f"measured {mw_fit:.0f} ± {mw_err:.0f} MeV, true {truth_mev:.1f} MeV: pull {pull:+.2f}")
assert abs(pull) < 3, "the measurement is more than 3 sigma from the truth"

# %% [markdown]
# ## 5. The report
#
# `wmass report` writes a browsable site of the fit: pre- and post-fit distributions, pulls
# and impacts of every nuisance, and m_W. While your sample is blinded the site shows the
# **blinded** m_W (and leaves out the comparison with the published measurements); it shows the
# fitted value once the course secret is set — after the unblinding.

# %%
wmass(f"report {OUT / 'fitresult.h5'} {OUT / 'hists.h5'} --out {WORK / 'site'} --formats png")
print("open", WORK / "site" / "index.html", "in a browser")

# %% [markdown]
# **Going further**: the team project of the last days is notebook 14 (statistical scaling,
# linearity, one systematic study per team, slides from this report site). Also:
#
# - generate a bigger sample (`--events 2e6`), fit in pt-eta-charge (the default `--fitvar`),
#   and watch the uncertainty shrink as 1/sqrt(N) until the systematics take over (global
#   impacts);
# - generate your own unblinded samples at other masses (`wmass generate --mw ...`): is the
#   fit linear over ±100 MeV?
# - run the histmaker on the SLURM recipe (`--cluster deploy/slurm.yaml`) or with `root://` URLs
#   in `datasets.yaml` (`deploy/analysis-facility.md`);
# - fit with `--minimizer minuit` and compare.
