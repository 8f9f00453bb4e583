"""From histograms to the fit: process groups, the nonprompt background (extended ABCD),
smoothing in pT, systematic operations (mirror, symmetrise, decorrelate) and the fit input.

>>> from analysis.postprocess import mirror, extended_abcd, systematic_group
"""

from analysis.postprocess.groups import (
    NONPROMPT,
    PROMPT_BACKGROUNDS,
    SIGNAL,
    SYSTEMATIC_GROUPS,
    mc_scale,
    systematic_group,
)
from analysis.postprocess.nonprompt import (
    REGIONS,
    NonpromptEstimate,
    extended_abcd,
    nonprompt_estimate,
    region,
    simple_abcd,
)
from analysis.postprocess.smoothing import (
    ExpPolyFit,
    SmoothNonprompt,
    fit_exp_poly,
    pt_basis,
    smooth_nonprompt,
)
from analysis.postprocess.syst_ops import decorrelate, mirror, symmetrise

__all__ = [
    "NONPROMPT",
    "PROMPT_BACKGROUNDS",
    "REGIONS",
    "SIGNAL",
    "SYSTEMATIC_GROUPS",
    "ExpPolyFit",
    "NonpromptEstimate",
    "SmoothNonprompt",
    "decorrelate",
    "extended_abcd",
    "fit_exp_poly",
    "mc_scale",
    "mirror",
    "nonprompt_estimate",
    "pt_basis",
    "region",
    "simple_abcd",
    "smooth_nonprompt",
    "symmetrise",
    "systematic_group",
]
