"""From ``hists.h5`` to the fit input, in one import: the names of ``wmass setup-fit``'s
post-processing, gathered from the modules that hold them.

- :mod:`~analysis.postprocess.channel`: the templates of one channel (:func:`channel_setup`,
  :class:`ChannelSetup`, :func:`project`) and its nuisances' names;
- :mod:`~analysis.postprocess.nuisances`: the nuisances a variation histogram provides
  (:class:`Nuisance`, :func:`nuisances_of`);
- :mod:`~analysis.postprocess.nonprompt_templates`: the nonprompt templates and their
  closure on the QCD simulation (:func:`closure_projections`, :func:`nonprompt_closure`,
  :func:`nonclosure_sizes`);
- :mod:`~analysis.postprocess.fit_input`: the fit input of one or several channels
  (:func:`build_fit_input`) and its summary (:func:`summary_text`).
"""

from __future__ import annotations

from analysis.postprocess.channel import ANALYSES, ChannelSetup, channel_setup, project
from analysis.postprocess.fit_input import build_fit_input, summary_text
from analysis.postprocess.nonprompt_templates import (
    closure_projections,
    nonclosure_sizes,
    nonprompt_closure,
)
from analysis.postprocess.nuisances import Nuisance, nuisances_of

__all__ = [
    "ANALYSES",
    "ChannelSetup",
    "Nuisance",
    "build_fit_input",
    "channel_setup",
    "closure_projections",
    "nonclosure_sizes",
    "nonprompt_closure",
    "nuisances_of",
    "project",
    "summary_text",
]
