"""pyhf workspaces in the structured engine: reading (:mod:`.read`) and export (:mod:`.export`).

A workspace becomes a :class:`fit.terms.TermsInput` whose HistFactory modifiers are terms of the
structured likelihood (:mod:`fit.terms`), so :func:`fit.fit` fits it with the same minimiser,
covariance, impacts, toys and scans as a ``fitinput.h5``:

>>> from fit import fit
>>> spec = simple_workspace(signal=[5.0, 10.0], background=[50.0, 60.0], observed=[58, 69])
>>> fi = read_workspace(spec)
>>> fi.parameters
['mu']
>>> round(float(fit(fi).pois["mu"]["value"]), 3)
1.069
"""

from __future__ import annotations

from .export import to_workspace, workspace_parameters, write_workspace
from .read import (
    DEFAULT_MODIFIER_SETTINGS,
    GROUPS,
    MODIFIER_TYPES,
    WorkspaceError,
    read_workspace,
    simple_workspace,
)

__all__ = [
    "DEFAULT_MODIFIER_SETTINGS",
    "GROUPS",
    "MODIFIER_TYPES",
    "WorkspaceError",
    "read_workspace",
    "simple_workspace",
    "to_workspace",
    "workspace_parameters",
    "write_workspace",
]
