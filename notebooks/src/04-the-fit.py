# %% [markdown]
# # 04 — The fit: likelihood, pulls, impacts
#
# The measurement is a binned profile-likelihood fit (the seminar's formula):
#
# $$ -\ln L = \sum_{b} \left(n_b(\theta) - d_b \ln n_b(\theta)\right)
# + \tfrac12 \sum_k \theta_k^2, \qquad
# n_b = \sum_p n_{bp}^{0} \prod_k \kappa_{bpk}^{\theta_k} $$
#
# Every systematic is a nuisance parameter θ_k with a unit Gaussian constraint; m_W is an
# unconstrained parameter that interpolates between the ±100 MeV templates. `fit` builds this
# from templates (`FitInputBuilder`), minimises it with a trust-region Newton method (exact
# Hessian, float64) and reports the POI, the covariance, pulls, impacts and goodness of fit.
#
# Time: about 25 minutes.

# %% [markdown]
# ## 1. A small W-mass model

# %%
import hist
import numpy as np

from fit.fitter import fit
from fit.builder import FitInputBuilder

from analysis.constants import MW_REF_MEV as MW_REF  # the simulation's m_W, 80379 MeV
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
TRUE_SHIFT = 30.0  # MeV above MW_REF: in this toy model you know the truth
truth = expected + TRUE_SHIFT / 100 * (up - w0)
data = np.random.default_rng(1).poisson(truth).astype(float)
fit_input, *_ = build(data)
print(fit_input.parameters)

# %%
result = fit(fit_input, impacts=True, global_impacts=True)
print(result.summary())

# %% [markdown]
# ## 2. Pulls and constraints
#
# A *pull* is how far the fit moved a nuisance from its prior (in units of its prior width); a
# *constraint* is its post-fit width over the prior width. A constraint well below 1 means the
# data measure that nuisance better than the prior did — worth understanding before unblinding.

# %%
for name, p, cns in zip(result.parameters, result.pulls, result.constraints):
    if np.isfinite(p):
        print(f"{name:14s} pull {p:+.2f}   constraint {cns:.2f}")

# %% [markdown]
# ## 3. Impacts
#
# The *impact* of a nuisance on m_W is how much m_W moves when that nuisance is shifted by its
# post-fit uncertainty, the others re-fitted: `cov[mW, k] / sigma_k`. *Global impacts* split the
# total m_W uncertainty into sources that add in quadrature (data statistics, each group).

# %%
impacts = result.impacts["mW"]
order = np.argsort(-np.abs(impacts))
for k in order:
    if result.parameters[k] != "mW":
        print(f"{result.parameters[k]:14s} {impacts[k]:+7.2f} MeV")
glob = result.global_impacts["mW"]
print({k: round(v, 2) for k, v in glob.items()})

# %% [markdown]
# ### Exercise 4.1
#
# Global impacts add up in quadrature to the total uncertainty. Check it: compute `quad_sum`,
# the quadrature sum of every entry of `glob` except `"total"`, and compare with `glob["total"]`
# and with the fit's own error `result.pois["mW"]["error"]` (from the Hessian: the two agree to a
# fraction of a per cent, the global impacts linearise the response to the data).

# %% tags=["exercise"]
quad_sum = None
### BEGIN SOLUTION
quad_sum = float(np.sqrt(sum(v**2 for k, v in glob.items() if k != "total")))
quad_sum, result.pois["mW"]["error"]
### END SOLUTION

# %% tags=["check"]
assert abs(quad_sum - glob["total"]) < 1e-9 * glob["total"]
assert abs(quad_sum - result.pois["mW"]["error"]) < 0.01 * result.pois["mW"]["error"]
print(f"right: {quad_sum:.3f} MeV in quadrature = the total uncertainty")

# %% [markdown]
# ### Exercise 4.2 — does the fit measure what it should?
#
# A fit on the **Asimov** data set (the expectation itself, no fluctuations) must give back the
# nominal value exactly, and its error is the *expected* uncertainty. Then, the real test: many
# pseudo-experiments at a known mass must give a pull distribution `(m_fit - m_true)/sigma` with
# mean 0 and width 1.
#
# Fit 40 Poisson pseudo-data sets drawn from `truth` (seed them with
# `np.random.default_rng(100 + i)`), and store the pulls in the array `pulls` (40 numbers).

# %% tags=["exercise"]
pulls = None
### BEGIN SOLUTION
pulls = []
for i in range(40):
    toy = np.random.default_rng(100 + i).poisson(truth).astype(float)
    r = fit(build(toy)[0])
    pulls.append((r.pois["mW"]["value"] - (MW_REF + TRUE_SHIFT)) / r.pois["mW"]["error"])
pulls = np.array(pulls)
print(f"mean {pulls.mean():+.2f}, width {pulls.std(ddof=1):.2f}")
### END SOLUTION

# %% tags=["check"]
asimov = fit(fit_input, data="asimov")
assert abs(asimov.pois["mW"]["value"] - MW_REF) < 1e-6   # the expectation gives back the nominal
assert len(pulls) == 40
assert abs(np.mean(pulls)) < 3 / np.sqrt(40), "biased: the mean pull is more than 3 sigma from 0"
assert 0.6 < np.std(pulls, ddof=1) < 1.4, "the errors do not describe the spread"
print("right: an unbiased fit with correct uncertainties")

# %% [markdown]
# ## 4. Browse it
#
# `analysis.report.plots.nuisance_page` writes the interactive page of pulls, constraints and impacts
# the report uses (searchable, sortable, fine with 5000 nuisances), and `wmass report` a whole
# site. Write the fit result and make the site:

# %%
from analysis.course import work_dir

WORK = work_dir()  # your own directory: $WMASS_COURSE_DIR, default course-work/

from analysis.report import write_report

fit_input.write(WORK / "nb04-fitinput.h5")
result.write(WORK / "nb04-fitresult.h5", meta={**result.meta, "inputs": [str(WORK / "nb04-fitinput.h5")]})
page = write_report(WORK / "nb04-fitresult.h5", out=WORK / "site", formats=("png",))
print("open", page)
