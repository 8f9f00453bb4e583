"""The things a user drives: datasets, sample generation, running on Dask, outputs, post-processing.

``analysis`` holds the user-facing steps of the chain (see the layout in README.md). Its rooms (subpackages):
``generate`` (synthetic NanoAOD with known truth), ``runner`` (chunks, executors, Dask
clusters, failures, checkpoints), ``postprocess`` (process groups, nonprompt background,
systematic operations) and ``report`` (the HTML site and its plots). At the top: ``datasets``
(the YAML fileset), ``io`` (HDF5 outputs with provenance), ``lumi`` (golden JSON and brilcalc
CSV), ``histmaker`` and ``setup_fit`` (the steps between them) and ``cli`` (the ``wmass``
command, with ``inspect`` and ``demo``). Submodules are imported on demand so that
``import analysis`` stays cheap; the errors a user meets are re-exported here.
"""

from analysis.errors import BadInputFile, ConfigError, MissingBranch, WMassError

__all__ = ["BadInputFile", "ConfigError", "MissingBranch", "WMassError"]
