# %% [markdown]
# # 14 — Team project: from one measurement to a validated one
#
# The long exercise (05) measured m_W once. A measurement is only worth something with the
# studies that say how far to trust it. In the last days of the school each team (3-5
# students) does them, on their own blinded samples, and presents on the last day:
#
# | day | study | in this notebook |
# |---|---|---|
# | 1 | **statistical scaling**: how the uncertainty falls with luminosity, where the systematics take over | section 1 (expected uncertainties from Asimov fits) |
# | 1-2 | **linearity**: inject known masses, fit, slope of fitted against injected = 1 | section 2 (the simulation's mass weights as pseudo-data) |
# | 2-3 | **one systematic study per team**, from the menu of section 3 | a worked example: the pileup weights |
# | 4 | **slides** from the team's report site, **unblinding**, the class's combination | section 4 |
#
# Each section is short here (a few minutes of computing on the course sample); on the project
# days, repeat it at scale: bigger samples (`wmass course generate --events 2000000` into the
# team's directory), pt-eta-charge fits, the facility's Dask cluster. Time for this notebook:
# about 40 minutes; the project: two to three days.

# %%
import contextlib
import dataclasses
import io
import shlex

import numpy as np

from analysis import cli
from analysis.course import blind_text, course_sample, work_dir

WORK = work_dir()         # your own directory: $WMASS_COURSE_DIR, default course-work/
sample = course_sample()  # your blinded sample: the facility's shared one, or made here once (~15 s)
SAMPLES, DATASETS = sample.path, sample.datasets
OUT = WORK / "team-project"
OUT.mkdir(exist_ok=True)


def wmass(command: str, tail: int = 800) -> None:
    """Run a wmass command; what it prints is shown with every fitted m_W blinded."""
    print("$ wmass", command)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        rc = cli.main(shlex.split(command))
    print(blind_text(out.getvalue(), sample)[-tail:])
    assert rc == 0, f"wmass {command} failed ({rc})"


# the histograms of the long exercise (notebook 05), or made again here (about a minute)
HISTS = WORK / "long-exercise" / "hists.h5"
if not HISTS.exists():
    HISTS = OUT / "hists.h5"
    wmass(f"histmaker --analysis wmass --datasets {DATASETS} --out {HISTS} --executor iterative --quiet")
print("histograms:", HISTS)

# %% [markdown]
# ## 1. Statistical scaling
#
# The **expected** uncertainty does not need the data: fit the *Asimov* pseudo-data (the
# prediction itself, no fluctuation), which every analysis does before unblinding. To see it
# at k times the luminosity, multiply the data, the prediction and the simulation's sum of
# squared weights by k (k times more data *and* simulation): the statistical part falls like
# 1/sqrt(k), the systematic part does not, so
#
# σ(k)² = σ_stat² / k + σ_syst².

# %%
from fit.fitter import fit
from fit.writer import FitInput

wmass(f"setup-fit {HISTS} --out {OUT / 'asimov.h5'} --fitvar pt-charge --pseudodata asimov")
asimov = FitInput.read(OUT / "asimov.h5")


def scaled(fi: FitInput, k: float) -> FitInput:
    """``fi`` at k times the luminosity (data, prediction and MC statistics)."""
    return dataclasses.replace(
        fi,
        data=fi.data * k,
        nominal=fi.nominal * k,
        sumw2=None if fi.sumw2 is None else fi.sumw2 * k,
    )


K = [1, 4, 16, 64]

# %% [markdown]
# ### Exercise 14.1
#
# Fit `scaled(asimov, k)` for each k of `K` (`fit(...)`, then `.pois["mW"]["error"]`) and
# store the expected m_W uncertainties in `errors` (a list, MeV). Then fit the model
# σ² = a/k + b to them (`np.polyfit(1/k, σ², 1)` gives `[a, b]`) and store
# `sigma_stat = sqrt(a)` (the statistical uncertainty at k = 1) and `sigma_syst = sqrt(b)`.
# At which luminosity are the two equal?

# %% tags=["exercise"]
errors, sigma_stat, sigma_syst = [], None, None
### BEGIN SOLUTION
for k in K:
    errors.append(fit(scaled(asimov, k)).pois["mW"]["error"])
    print(f"k = {k:3d}: expected uncertainty {errors[-1]:6.1f} MeV")
a, b = np.polyfit(1 / np.array(K, dtype=float), np.array(errors) ** 2, 1)
sigma_stat, sigma_syst = np.sqrt(a), np.sqrt(max(b, 0.0))
print(f"stat {sigma_stat:.0f} MeV at k = 1, syst {sigma_syst:.0f} MeV: "
      f"equal at k = {a / b:.0f}" if b > 0 else "no systematic floor")
### END SOLUTION

# %% tags=["check"]
assert len(errors) == len(K), "one expected uncertainty per k"
_e = np.asarray(errors)
assert np.all(np.diff(_e) < 0), "more luminosity, smaller uncertainty"
# the first quadrupling is statistics-dominated: the error about halves
assert 1.6 < _e[0] / _e[1] <= 2.0 + 1e-6, f"sigma(1)/sigma(4) = {_e[0] / _e[1]:.2f}"
# the model sigma^2 = a/k + b describes the four fits (to 15 %: see below)
_model = np.sqrt(sigma_stat**2 / np.asarray(K) + sigma_syst**2)
np.testing.assert_allclose(_model, _e, rtol=0.15)
assert 0 <= sigma_syst < sigma_stat, "at the course's luminosity, statistics dominate"
print(f"right: sigma = sqrt({sigma_stat:.0f}^2/k + {sigma_syst:.0f}^2) MeV")

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 4))
kk = np.geomspace(1, 1000, 50)
ax.loglog(K, errors, "o", label="Asimov fits")
ax.loglog(kk, np.sqrt(sigma_stat**2 / kk + sigma_syst**2), "-", label="σ_stat²/k + σ_syst²")
ax.loglog(kk, sigma_stat / np.sqrt(kk), ":", label="statistics only")
ax.set_xlabel("luminosity / course sample")
ax.set_ylabel("expected m_W uncertainty [MeV]")
ax.legend()
fig.savefig(OUT / "scaling.png", dpi=80, bbox_inches="tight")

# %% [markdown]
# The model is not exact: with more data the nuisance parameters are *constrained* by the data
# themselves (a profiled systematic shrinks too), so the floor is lower at high luminosity than
# the straight line in σ² against 1/k says. Which nuisances does the data constrain most
# (`constraints` on the impacts page of the report)?
#
# On the project days: do it for real. Generate samples of 0.2M, 1M and 2M events, run the
# chain on each (pt-eta-charge), and put the *observed* uncertainties on this plot. Which
# systematic group takes over first (`--global-impacts`)?
#
# ## 2. Linearity
#
# A fit can be precise and still biased, or respond to a true shift of m_W by less (or more)
# than the shift. Inject known masses: `setup-fit --pseudodata massShift{d}MeV` makes
# pseudo-data from the simulation reweighted to m_W(ref) + d with its mass weights (not the
# ±100 MeV templates the fit interpolates), without statistical fluctuation.

# %%
from fit.result import FitResult

INJECTED = [-60, 0, 30, 90]  # MeV; 0 is the Asimov fit of section 1


def fitted_shift(fi: FitInput) -> tuple[float, float]:
    """(m_W(fit) - m_W(ref), error) in MeV: a shift, not a mass, so nothing to blind."""
    res = fit(fi)
    poi = res.pois["mW"]
    return poi["value"] - poi["offset"], poi["error"]


# %% [markdown]
# ### Exercise 14.2
#
# For each injected shift d of `INJECTED`, make the fit input (`--pseudodata
# massShift{d}MeV`; for d = 0 use `asimov`), fit it with `fitted_shift` and store the fitted
# shifts in `fitted` (a list, MeV). Then fit a straight line, fitted = slope × injected +
# intercept (`np.polyfit`), and store `slope` and `intercept`.

# %% tags=["exercise"]
fitted, slope, intercept = [], None, None
### BEGIN SOLUTION
for d in INJECTED:
    if d == 0:
        fi = asimov
    else:
        wmass(f"setup-fit {HISTS} --out {OUT / f'shift{d}.h5'} --fitvar pt-charge "
              f"--pseudodata massShift{d}MeV", tail=0)
        fi = FitInput.read(OUT / f"shift{d}.h5")
    fitted.append(fitted_shift(fi)[0])
    print(f"injected {d:+4d} MeV, fitted {fitted[-1]:+7.2f} MeV")
slope, intercept = np.polyfit(INJECTED, fitted, 1)
print(f"slope {slope:.4f}, intercept {intercept:+.2f} MeV")
### END SOLUTION

# %% tags=["check"]
assert len(fitted) == len(INJECTED)
_s, _i = np.polyfit(INJECTED, fitted, 1)
assert abs(_s - slope) < 1e-9 and abs(_i - intercept) < 1e-6
assert abs(slope - 1) < 0.02, f"slope {slope:.4f}: the fit does not follow a true shift"
assert abs(intercept) < 2.0, f"intercept {intercept:+.2f} MeV: a bias without any shift"
_sigma = errors[0]  # the expected uncertainty of section 1
assert max(abs(np.asarray(fitted) - np.asarray(INJECTED))) < 0.05 * _sigma
print(f"right: linear, slope {slope:.4f} and intercept {intercept:+.2f} MeV "
      f"(residuals below 5 % of the {_sigma:.0f} MeV uncertainty)")

# %% [markdown]
# On the project days: linearity **with** statistical fluctuations — unblinded samples at
# known masses (`wmass generate --mw ...` at, e.g., ±50 MeV around the reference, several
# seeds each), one fit each: the slope, and the pulls' mean and width (0 and 1), as
# `benchmarks/mw_bias.py` does for the framework.
#
# ## 3. One systematic study per team
#
# The menu (each team takes one; the question, and where to start):
#
# | study | question | start from |
# |---|---|---|
# | nonprompt method | how much does m_W move between the fake-rate and the sideband ABCD? | `setup-fit --nonprompt-method sidebands` vs the default; notebook 06 |
# | muon momentum scale | what does a 10⁻⁴ scale bias do to m_W; does the Z calibration absorb it? | `wmass calibrate`, `--corrections`; notebooks 12, 13 |
# | PDFs | the PDF group's impact in pt-charge vs pt-eta-charge fits | `--global-impacts`; notebook 03 |
# | pileup | does a mismodelled pileup bias m_W, or is it profiled away? without the nuisance? | the worked example below; notebook 10 |
# | efficiencies | tag-and-probe scale factors off by their uncertainty | `wmass calibrate`; notebook 11 |
# | fit variable | pT × charge vs pT × η × charge: precision and robustness | `--fitvar` |
#
# **Worked example — pileup.** Make pseudo-data in which the pileup weights are off by one
# standard deviation (`--pseudodata pileupUp`) and fit them with the full model. The fit sees
# the variation only as far as the data can tell it from the rest: for one Gaussian nuisance
# with prior width 1 and post-fit width σ_post, the data's share of the information is
# 1 − σ_post², and that is how far the nuisance moves towards +1. Does m_W move? (A team then
# asks: what if the model did *not* have that nuisance — how large would the bias be?)

# %%
wmass(f"setup-fit {HISTS} --out {OUT / 'pileup-up.h5'} --fitvar pt-charge --pseudodata pileupUp", tail=0)
pileup_fit = fit(FitInput.read(OUT / "pileup-up.h5"))

# %% [markdown]
# ### Exercise 14.3
#
# From `pileup_fit`, store the fitted value of the `pileup` nuisance (`pileup_fit.values` at
# the index of `"pileup"` in `pileup_fit.parameters`) in `pileup_pull`, its post-fit
# uncertainty (`pileup_fit.errors`, same index) in `pileup_err`, and the m_W shift
# (fitted − reference, MeV, `.pois["mW"]`: `value - offset`) in `mw_shift`.

# %% tags=["exercise"]
pileup_pull, pileup_err, mw_shift = None, None, None
### BEGIN SOLUTION
i = pileup_fit.parameters.index("pileup")
pileup_pull, pileup_err = float(pileup_fit.values[i]), float(pileup_fit.errors[i])
poi = pileup_fit.pois["mW"]
mw_shift = poi["value"] - poi["offset"]
print(f"pileup nuisance {pileup_pull:+.3f} ± {pileup_err:.3f} (data's share of the information "
      f"{1 - pileup_err**2:.2f}); m_W shift {mw_shift:+.1f} ± {poi['error']:.0f} MeV")
### END SOLUTION

# %% tags=["check"]
_i = pileup_fit.parameters.index("pileup")
assert abs(pileup_pull - pileup_fit.values[_i]) < 1e-12
assert abs(pileup_err - pileup_fit.errors[_i]) < 1e-12
assert 0 < pileup_pull < 1, "the fit moves pileup towards the +1 of the pseudo-data, not past it"
assert abs(pileup_pull - (1 - pileup_err**2)) < 0.15, (
    f"pull {pileup_pull:.2f} against the data's share of the information {1 - pileup_err**2:.2f}"
)
_err = pileup_fit.pois["mW"]["error"]
assert abs(mw_shift - (pileup_fit.pois["mW"]["value"] - pileup_fit.pois["mW"]["offset"])) < 1e-9
assert abs(mw_shift) < 0.25 * _err, f"m_W moved by {mw_shift:+.1f} MeV"
print(f"right: pileup pulled to {pileup_pull:+.2f} (1 - σ_post² = {1 - pileup_err**2:.2f}); "
      f"m_W moved by {mw_shift:+.1f} MeV, {abs(mw_shift) / _err:.2f} of its uncertainty")

# %% [markdown]
# ## 4. The slides, from the team's report site
#
# `wmass report` makes the site (blinded: it shows m_W minus the hidden offset until the
# facilitator reveals the secret), and `wmass course slides` fills the slides template
# (`docs/course-slides.md`) from one of its runs: numbers, impacts and figures, copied beside
# the slides, plus your study's figures (`--figures`). Brackets `[...]` are yours to fill.

# %%
FITRESULT = WORK / "long-exercise" / "fitresult.h5"
if not FITRESULT.exists():  # notebook 05 not run here: fit the observed data now
    wmass(f"setup-fit {HISTS} --out {OUT / 'fitinput.h5'} --fitvar pt-charge", tail=0)
    FITRESULT = OUT / "fitresult.h5"
    wmass(f"fit {OUT / 'fitinput.h5'} --out {FITRESULT} --global-impacts", tail=0)
SITE = OUT / "site"
wmass(f"report {FITRESULT} {HISTS} --out {SITE} --formats png --name team-run", tail=300)
wmass(f"course slides {SITE / 'team-run'} --out {OUT / 'slides'} --team 'Team Jacobian' "
      f"--members {shlex.quote(sample.student)} --figures {OUT / 'scaling.png'}", tail=300)
print((OUT / "slides" / "slides.md").read_text()[:700])

# %% [markdown]
# ### Exercise 14.4
#
# The slides quote m_W. Read `OUT / "slides" / "slides.md"` into `slides_text` and check with
# your eyes that the m_W it quotes is the **blinded** one while your sample is blinded (what
# the notebook printed in section 4 of notebook 05), then list the figure files the slides
# use (the `plots/...png` names) in `figures`.

# %% tags=["exercise"]
slides_text, figures = None, []
### BEGIN SOLUTION
import re

slides_text = (OUT / "slides" / "slides.md").read_text()
figures = sorted(set(re.findall(r"\(plots/([^)]+\.png)\)", slides_text)))
print(figures)
### END SOLUTION

# %% tags=["check"]
import json

from analysis.course import blinding_for

_runs = json.loads((SITE / "runs.json").read_text())["runs"]
_mw = next(r for r in _runs if r["name"] == "team-run")["pois"]["mW"]
_blind = blinding_for(FITRESULT) is not None
assert bool(_mw.get("blinded")) == _blind, "the site is blinded exactly while the sample is"
assert ("blinded m_W" in slides_text) == _blind
_true = FitResult.read(FITRESULT).pois["mW"]
if _blind:  # the fitted m_W, rounded as shown, is nowhere in the slides
    from analysis.report.style import pdg_round

    assert pdg_round(_true["value"], _true["error"])[0] not in slides_text
assert "scaling.png" in figures and "pulls.png" in figures
for _name in figures:
    assert (OUT / "slides" / "plots" / _name).is_file(), f"{_name} not copied beside the slides"
print(f"right: {len(figures)} figures beside the slides; m_W {'blinded' if _blind else 'unblinded'}")
