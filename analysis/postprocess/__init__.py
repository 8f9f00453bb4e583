"""From histograms to the fit: process groups, the nonprompt background (extended ABCD),
smoothing in pT, systematic operations (mirror, symmetrise, decorrelate) and the fit input.

>>> from analysis.io import read_histograms
>>> from analysis.postprocess import build_fit_input, channel_setup
>>> setup = channel_setup(read_histograms("hists.h5"))               # doctest: +SKIP
>>> fit_input, summary = build_fit_input([setup], pseudodata="asimov")  # doctest: +SKIP
"""

from analysis.postprocess.channel import ChannelSetup, channel_setup, project
from analysis.postprocess.fit_input import build_fit_input
from analysis.postprocess.groups import (
    NONPROMPT,
    PROMPT_BACKGROUNDS,
    SIGNAL,
    SYSTEMATIC_GROUPS,
    mc_scale,
    systematic_group,
)
from analysis.postprocess.mass_templates import (
    MASS_TEMPLATE_DEGREE,
    SIGNAL_CORRELATION_DEGREE,
    correlated,
    factorised,
    relative_variation,
)
from analysis.postprocess.nonprompt import (
    REGIONS,
    NonpromptEstimate,
    extended_abcd,
    nonprompt_estimate,
    region,
    simple_abcd,
)
from analysis.postprocess.nuisances import Nuisance, nuisances_of
from analysis.postprocess.smoothing import (
    ExpPolyFit,
    FakeRateFit,
    FakeRateNonprompt,
    SmoothNonprompt,
    fake_rate_nonprompt,
    fit_exp_poly,
    fit_fake_rate,
    pt_basis,
    smooth_nonprompt,
)
from analysis.postprocess.syst_ops import decorrelate, mirror, symmetrise

__all__ = [
    "MASS_TEMPLATE_DEGREE",
    "NONPROMPT",
    "PROMPT_BACKGROUNDS",
    "REGIONS",
    "SIGNAL",
    "SIGNAL_CORRELATION_DEGREE",
    "SYSTEMATIC_GROUPS",
    "ChannelSetup",
    "ExpPolyFit",
    "FakeRateFit",
    "FakeRateNonprompt",
    "NonpromptEstimate",
    "Nuisance",
    "SmoothNonprompt",
    "build_fit_input",
    "channel_setup",
    "correlated",
    "decorrelate",
    "extended_abcd",
    "factorised",
    "fake_rate_nonprompt",
    "fit_exp_poly",
    "fit_fake_rate",
    "mc_scale",
    "mirror",
    "nonprompt_estimate",
    "nuisances_of",
    "project",
    "pt_basis",
    "region",
    "relative_variation",
    "simple_abcd",
    "smooth_nonprompt",
    "symmetrise",
    "systematic_group",
]
