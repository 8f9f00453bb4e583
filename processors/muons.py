"""The selected muons of a chunk as a :class:`~processors.base.Selected`, from their gathered
kinematics (:func:`~processors.base.gather`): pT, eta and phi in float64, charge and
isolation as read, and the trigger scale factor on the first muon of each event (the single
muon of the W selection, the leading or kept muon of the dimuon ones).

What :mod:`processors.wmass`, :mod:`processors.wlike` and :mod:`processors.zdilepton` share
when they select; its home could be a ``Selected`` constructor in :mod:`processors.base`.
"""

from __future__ import annotations

import numpy as np

from processors.base import Selected

__all__ = ["selected_muons"]


def selected_muons(events: np.ndarray, kin: dict[str, np.ndarray], index: np.ndarray) -> Selected:
    """``Selected`` of the chunk's ``events`` with muons ``index`` (``[n_sel, k]``) whose
    kinematics are ``kin`` (``{"pt", "eta", "phi", "charge", "iso"}``, each ``[n_sel, k]``);
    the trigger leg is column 0."""
    trigger_leg = np.zeros(index.shape, dtype=bool)
    trigger_leg[:, 0] = True
    return Selected(
        events,
        kin["pt"].astype(np.float64),
        kin["eta"].astype(np.float64),
        kin["phi"].astype(np.float64),
        kin["charge"],
        kin["iso"],
        trigger_leg,
        index,
    )
