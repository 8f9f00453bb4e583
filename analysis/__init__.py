"""The things a user drives: datasets, sample generation, running on Dask, outputs, post-processing.

``analysis`` holds the user-facing steps of the chain (see DESIGN.md): ``datasets`` (the YAML
fileset), ``generate`` (synthetic NanoAOD with known truth), ``run`` (executors, clusters,
progress), ``io`` (HDF5 outputs with provenance), ``lumi`` (golden JSON and brilcalc CSV),
``postprocess`` (process groups, nonprompt background, systematic operations), ``plots``,
``report`` and ``cli`` (the ``wmass`` command). Submodules are imported on demand so that
``import analysis`` stays cheap; the errors a user meets are re-exported here.
"""

from analysis.errors import BadInputFile, ConfigError, MissingBranch, WMassError

__all__ = ["BadInputFile", "ConfigError", "MissingBranch", "WMassError"]
