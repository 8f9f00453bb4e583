"""The one way the report's figures get matplotlib: the ``Agg`` backend (files, no display)
and mplhep's CMS style, imported when the first figure is drawn (not when the report's
modules are imported).
"""

from __future__ import annotations

from typing import Any

__all__ = ["pyplot"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the ``Agg`` backend with the CMS style applied."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.CMS)
    return plt
