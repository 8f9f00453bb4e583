"""The nonprompt (QCD multijet) background from data: the extended ABCD method.

The W selection is split by muon isolation (``passIso``) and transverse mass (``mt``,
three regions) into six regions; the signal region is D:

=========  ===================  ==================  ==============
           mT in [0, 20) GeV    mT in [20, 40) GeV  mT >= 40 GeV
=========  ===================  ==================  ==============
fail iso   Ax                   A                   C
pass iso   Bx                   B                   D (signal)
=========  ===================  ==================  ==============

In each sideband the prompt contribution (simulation) is subtracted from the data, which
leaves the nonprompt yield. The fake rate ``f = pass / fail`` is measured at low mT,
``f(Bx/Ax)`` and ``f(B/A)``, and extrapolated to the signal mT region. The simple ABCD
method takes it constant, ``D = C * B / A``; the *extended* method lets ``log f`` depend
linearly on the mT region, ``f_D = f_B**2 / f_Bx``, so that

    D = C * (Ax * B**2) / (Bx * A**2).

Everything is computed bin by bin in pT x eta x charge, and for all systematic variations
of the prompt subtraction at once: the variations are a last axis of the prompt
prediction and broadcast through the same arithmetic (no loop over variations).

>>> import numpy as np
>>> d = extended_abcd(ax=np.array(100.0), bx=np.array(20.0), a=np.array(50.0),
...                   b=np.array(12.0), c=np.array(30.0))  # 30 * 100 * 144 / (20 * 2500)
>>> round(float(d), 9)
8.64
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "REGIONS",
    "WEIGHTS",
    "NonpromptEstimate",
    "extended_abcd",
    "nonprompt_estimate",
    "region",
    "simple_abcd",
]

#: region name -> (passIso index, mT-region index) on the W histogram axes
REGIONS: dict[str, tuple[int, int]] = {
    "Ax": (0, 0),
    "Bx": (1, 0),
    "A": (0, 1),
    "B": (1, 1),
    "C": (0, 2),
    "D": (1, 2),
}
#: exponents of the sideband yields in the extended ABCD product (log D = sum w_r log r)
WEIGHTS: dict[str, float] = {"C": 1.0, "Ax": 1.0, "B": 2.0, "Bx": -1.0, "A": -2.0}


def region(values: np.ndarray, name: str, *, iso_axis: int = 3, mt_axis: int = 4) -> np.ndarray:
    """The slice of region ``name`` (``Ax``, ``Bx``, ``A``, ``B``, ``C``, ``D``) of a W
    histogram's values ``[pt, eta, charge, passIso, mt, ...]``."""
    iso, mt = REGIONS[name]
    index: list[slice | int] = [slice(None)] * values.ndim
    index[iso_axis], index[mt_axis] = iso, mt
    return values[tuple(index)]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.broadcast_arrays(np.asarray(num, dtype=float), np.asarray(den, dtype=float))
    out = np.zeros(num.shape)
    np.divide(num, den, out=out, where=den > 0)
    return out


def extended_abcd(
    ax: np.ndarray, bx: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray
) -> np.ndarray:
    """``D = C * Ax * B**2 / (Bx * A**2)`` element-wise; 0 where a denominator is not positive
    (negative sideband yields after the prompt subtraction are treated as 0)."""
    ax, bx, a, b, c = (np.clip(np.asarray(r, dtype=float), 0, None) for r in (ax, bx, a, b, c))
    return c * _ratio(ax * b * b, bx * a * a)


def simple_abcd(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``D = C * B / A`` (a constant fake rate), for comparison with the extended method."""
    a, b, c = (np.clip(np.asarray(r, dtype=float), 0, None) for r in (a, b, c))
    return c * _ratio(b, a)


@dataclass
class NonpromptEstimate:
    """The nonprompt prediction in the signal region D and its inputs.

    ``sidebands``: nonprompt yield (data - prompt) in each sideband ``[pt, eta, charge, ...]``
    (``...``: the variation axis when the prompt had one), ``variances``: their statistical
    variances (data and nominal prompt simulation), ``d``: the unsmoothed extended-ABCD
    prediction, ``d_variance``: its linearised statistical variance.
    """

    sidebands: dict[str, np.ndarray]
    variances: dict[str, np.ndarray]
    d: np.ndarray
    d_variance: np.ndarray


def nonprompt_estimate(
    data: np.ndarray,
    prompt: np.ndarray,
    *,
    data_variance: np.ndarray | None = None,
    prompt_variance: np.ndarray | None = None,
    iso_axis: int = 3,
    mt_axis: int = 4,
) -> NonpromptEstimate:
    """Extended-ABCD nonprompt prediction from data and the summed prompt simulation.

    ``data``: ``[pt, eta, charge, passIso, mt]``; ``prompt``: the same, optionally with a last
    axis of systematic variations ``[..., n_var]`` — the data broadcast against it, so the
    estimate comes out for every variation in one pass. Variances default to the data counts
    (Poisson) and 0 for the prompt.
    """
    data = np.asarray(data, dtype=float)
    prompt = np.asarray(prompt, dtype=float)
    extra = prompt.ndim - data.ndim
    if extra not in (0, 1) or prompt.shape[: data.ndim] != data.shape:
        raise ValueError(f"nonprompt_estimate: prompt {prompt.shape} does not match {data.shape}")
    if data_variance is None:
        data_variance = data
    if prompt_variance is None:
        prompt_variance = np.zeros(data.shape)
    expand = (lambda x: x[..., None]) if extra else (lambda x: x)
    kw = {"iso_axis": iso_axis, "mt_axis": mt_axis}
    data_variance = np.asarray(data_variance, dtype=float)
    prompt_variance = np.asarray(prompt_variance, dtype=float)
    sidebands, variances = {}, {}
    for name in WEIGHTS:
        sidebands[name] = expand(region(data, name, **kw)) - region(prompt, name, **kw)
        variances[name] = expand(
            region(data_variance, name, **kw) + region(prompt_variance, name, **kw)
        )
    d = extended_abcd(*(sidebands[r] for r in ("Ax", "Bx", "A", "B", "C")))
    # linearised: (dD/D)^2 = sum_r w_r^2 var_r / r^2
    rel = sum(
        WEIGHTS[r] ** 2 * _ratio(variances[r], np.clip(sidebands[r], 0, None) ** 2) for r in WEIGHTS
    )
    return NonpromptEstimate(sidebands, variances, d, d * d * rel)
