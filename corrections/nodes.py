"""Small constructors of correctionlib ``schemav2`` nodes shared by the builders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import correctionlib.schemav2 as cs
import numpy as np

__all__ = ["binning", "by_variation", "multibinning", "real", "string"]


def real(name: str, description: str = "") -> cs.Variable:
    """A real-valued input or output."""
    return cs.Variable(name=name, type="real", description=description or None)


def string(name: str, description: str = "") -> cs.Variable:
    """A string input (the variation key)."""
    return cs.Variable(name=name, type="string", description=description or None)


def binning(
    input_name: str, edges: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray
) -> cs.Binning:
    """1D binning in ``input_name``, values clamped at the edges."""
    return cs.Binning(
        nodetype="binning",
        input=input_name,
        edges=[float(e) for e in edges],
        content=[float(v) for v in np.asarray(values, dtype=float).ravel()],
        flow="clamp",
    )


def multibinning(
    inputs: Sequence[str], edges: Sequence[Sequence[float]], values: np.ndarray
) -> cs.MultiBinning:
    """N-D binning (row-major ``values``), clamped at the edges."""
    values = np.asarray(values, dtype=float)
    shape = tuple(len(e) - 1 for e in edges)
    if values.shape != shape:
        raise ValueError(f"values shape {values.shape} != bins {shape}")
    return cs.MultiBinning(
        nodetype="multibinning",
        inputs=list(inputs),
        edges=[[float(x) for x in e] for e in edges],
        content=[float(v) for v in values.ravel()],
        flow="clamp",
    )


def by_variation(input_name: str, nodes: Mapping[str, object]) -> cs.Category:
    """A category node keyed by variation name (``"nominal"``, ``"up"``, ...)."""
    return cs.Category(
        nodetype="category",
        input=input_name,
        content=[cs.CategoryItem(key=k, value=v) for k, v in nodes.items()],
    )
