"""The nonprompt process of the W channel as fit templates: its nominal from data by the
extended ABCD method (:mod:`~analysis.postprocess.nonprompt`), smoothed in pT
(:mod:`~analysis.postprocess.smoothing`), its statistical and non-closure nuisances, its
response to every variation of the prompt subtraction, and its closure on the QCD simulation.

Methods (:data:`NONPROMPT_METHODS`): ``"fakerate"`` (fake rates and region C's pT shape
measured per charge in the eta-summed projection) or ``"sidebands"`` (every sideband smoothed
per eta x charge slice); without smoothing, the raw extended-ABCD estimate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.postprocess.nonprompt import nonprompt_estimate
from analysis.postprocess.smoothing import (
    fake_rate_nonprompt,
    fit_fake_rate,
    pt_basis,
    smooth_nonprompt,
)
from analysis.postprocess.syst_ops import decorrelate, mirror

__all__ = [
    "NONCLOSURE_DEFAULT",
    "NONPROMPT_METHODS",
    "NonpromptTemplates",
    "closure_projections",
    "nonclosure_sizes",
    "nonprompt_closure",
    "nonprompt_templates",
]

NONPROMPT_METHODS = ("fakerate", "sidebands")
#: size (in log D) of each non-closure nuisance of the nonprompt when no QCD simulation
#: measures it: 10% in the normalisation, +-10% at the pT ends
NONCLOSURE_DEFAULT = 0.10


@dataclass
class NonpromptTemplates:
    """The nonprompt process in the signal region: ``nominal``, ``sumw2``, ``shapes[name] =
    (up, down)`` (its own nuisances and every prompt nuisance it responds to, in the order they
    enter the fit), and the closure on the QCD simulation when there was one."""

    nominal: np.ndarray
    sumw2: np.ndarray
    shapes: dict[str, tuple[np.ndarray, np.ndarray]]
    closure: dict[str, float] = field(default_factory=dict)
    projections: dict[str, dict[str, list[float]]] = field(default_factory=dict)


def nonprompt_templates(
    data: np.ndarray,
    prompt: np.ndarray,
    prompt_variance: np.ndarray,
    delta: np.ndarray,
    names: Sequence[str],
    fit_axes: Sequence[Any],
    fit_region: Callable[[np.ndarray], np.ndarray],
    *,
    qcd: tuple[np.ndarray, np.ndarray] | None = None,
    smoothing: bool = True,
    method: str = "fakerate",
    order: int = 2,
    prior: float = 1.0,
) -> NonpromptTemplates:
    """The nonprompt templates of a W channel from ``data`` and the ``prompt`` simulation in
    all regions ``[pt, eta, charge, passIso, mt]``.

    ``delta[..., j, 0/1]``: the up/down shift of the prompt simulation by nuisance
    ``names[j]`` (the nonprompt moves the other way); ``fit_region`` cuts the signal region
    out of an all-regions array; ``qcd``: the QCD simulation ``(nominal, variance)`` in all
    regions, for the closure (and the size of the non-closure nuisances of ``"fakerate"``).
    """
    delta = delta.reshape(*prompt.shape, 2 * len(names))
    est = nonprompt_estimate(data, prompt, data_variance=data, prompt_variance=prompt_variance)
    varied = nonprompt_estimate(data, prompt[..., None] + delta)
    pt = fit_axes[0].centers
    fakerate = smoothing and method == "fakerate"
    shapes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if fakerate:
        fr = fake_rate_nonprompt(est, pt, varied=varied, order=order)
        np_nominal, np_varied = fr.nominal, fr.variations
        for k in range(fr.eigen_up.shape[-1]):
            up = fr.eigen_up[..., k]
            shapes[f"nonprompt_shape_eig{k}"] = (up, mirror(np_nominal, up))
        n_eta, n_q = np_nominal.shape[1:]
        for e in range(n_eta):
            for q in range(n_q):
                up = np_nominal.copy()
                up[:, e, q] = fr.slice_up[:, e, q]
                shapes[f"nonprompt_eta{e}_q{q}_norm"] = (up, mirror(np_nominal, up))
        sumw2 = np.zeros(np_nominal.shape)
    elif smoothing:
        smooth = smooth_nonprompt(est, pt, varied=varied, order=order, prior_width=prior)
        np_nominal, np_varied = smooth.nominal, smooth.variations
        n_eta, n_q = np_nominal.shape[1:]
        flat = np_nominal.reshape(len(pt), n_eta * n_q)
        eig = smooth.eigen_up.reshape(len(pt), n_eta * n_q, -1)
        per_slice = decorrelate(flat, eig, axis=1)  # [pt, slices, slices, k]
        for s in range(n_eta * n_q):
            e, q = divmod(s, n_q)
            for k in range(eig.shape[-1]):
                up = per_slice[:, :, s, k].reshape(np_nominal.shape)
                shapes[f"nonprompt_eta{e}_q{q}_eig{k}"] = (up, mirror(np_nominal, up))
        sumw2 = np.zeros(np_nominal.shape)
    else:
        np_nominal, np_varied = est.d, varied.d
        sumw2 = est.d_variance
    stat_deltas = [up - np_nominal for up, _ in shapes.values()]
    np_varied = np_varied.reshape(*np_nominal.shape, len(names), 2)
    for j, nu_name in enumerate(names):
        shapes[nu_name] = (np_varied[..., j, 0], np_varied[..., j, 1])
    out = NonpromptTemplates(np_nominal, sumw2, shapes)
    if qcd is not None:
        qcd_nominal, qcd_variance = qcd
        out.closure = {
            "qcd_mc_in_signal_region": float(fit_region(qcd_nominal).sum()),
            "qcd_mc_stat": float(np.sqrt(fit_region(qcd_variance).sum())),
            "nonprompt_abcd": float(est.d.sum()),
            "nonprompt_abcd_stat": float(np.sqrt(est.d_variance.sum())),
            "nonprompt_smoothed": float(np_nominal.sum()),
        }
        truth = (fit_region(qcd_nominal), fit_region(qcd_variance))
        axis_names = [a.name for a in fit_axes]
        out.projections = closure_projections(np_nominal, stat_deltas, *truth, axis_names)
        out.closure.update(nonprompt_closure(out.projections))
        if fakerate:
            out.closure.update(nonclosure_sizes(qcd_nominal, qcd_variance, *truth, np.asarray(pt)))
    if fakerate:
        # non-closure: a normalisation and a pT slope of log D, as large as the closure
        # on the QCD simulation shows or cannot exclude (defaults without the simulation)
        closure = out.closure
        sizes = {
            "norm": max(
                abs(closure.get("nonclosure_norm", 0.0)),
                closure.get("nonclosure_norm_error", NONCLOSURE_DEFAULT),
            ),
            "pt": max(
                abs(closure.get("nonclosure_slope", 0.0)),
                closure.get("nonclosure_slope_error", NONCLOSURE_DEFAULT),
            ),
        }
        x = pt_basis(np.asarray(pt), 1)[:, 1][:, None, None]
        for what, size in sizes.items():
            up = np_nominal * np.exp(size * (1.0 if what == "norm" else x))
            shapes[f"nonprompt_nonclosure_{what}"] = (up, mirror(np_nominal, up))
    return out


def closure_projections(
    estimate: np.ndarray,
    deltas: list[np.ndarray],
    truth: np.ndarray,
    truth_variance: np.ndarray,
    axis_names: list[str],
) -> dict[str, dict[str, list[float]]]:
    """The nonprompt estimate and the QCD simulation in each one-axis projection of the
    signal region: ``{axis: {"estimate", "truth", "variance", "pull"}}``.

    The variance of a projected bin is the simulation's, taken at the estimate (its mean
    weight times the estimate), plus the estimate's: the sum of the squared projected shifts of
    its statistical nuisances (``deltas``, independent). The pull of a bin without variance
    is 0.
    """
    out: dict[str, dict[str, list[float]]] = {}
    # the simulation's variance at the estimate (Pearson): its mean weight times the estimate,
    # so that a bin where a sparse simulation happens to be empty still has its variance
    mean_weight = float(truth_variance.sum() / truth.sum()) if truth.sum() > 0 else 0.0
    for i, name in enumerate(axis_names):
        other = tuple(j for j in range(estimate.ndim) if j != i)
        e, t = estimate.sum(axis=other), truth.sum(axis=other)
        v = mean_weight * np.clip(e, 0, None) + sum(d.sum(axis=other) ** 2 for d in deltas)
        pull = np.divide(e - t, np.sqrt(v), out=np.zeros_like(e), where=v > 0)
        out[name] = {
            "estimate": e.tolist(),
            "truth": t.tolist(),
            "variance": np.asarray(v, dtype=float).tolist(),
            "pull": pull.tolist(),
        }
    return out


def nonprompt_closure(projections: dict[str, dict[str, list[float]]]) -> dict[str, float]:
    """chi2 and ndf of the nonprompt estimate against the QCD simulation in each one-axis
    projection (``chi2_pt``, ``ndf_pt``, ...) of :func:`closure_projections`; bins with no
    variance are left out.

    >>> est = np.ones((2, 3)); truth = np.ones((2, 3))
    >>> proj = closure_projections(est, [0.1 * est], truth, 0.01 * truth, ["pt", "eta"])
    >>> nonprompt_closure(proj)["chi2_pt"]
    0.0
    """
    out: dict[str, float] = {}
    for name, p in projections.items():
        pull, v = np.asarray(p["pull"]), np.asarray(p["variance"])
        out[f"chi2_{name}"] = float(np.sum(pull[v > 0] ** 2))
        out[f"ndf_{name}"] = float((v > 0).sum())
    return out


def nonclosure_sizes(
    qcd: np.ndarray,
    qcd_variance: np.ndarray,
    truth: np.ndarray,
    truth_variance: np.ndarray,
    pt: np.ndarray,
) -> dict[str, float]:
    """The non-closure of the nonprompt method measured on the QCD simulation alone (all six
    regions from simulation, no prompt subtraction): ``log(truth / estimate)`` in the signal
    region's pT projection fitted by ``a + b x`` (x: pT scaled to [-1, 1]), with errors.

    ``qcd``, ``qcd_variance``: the QCD simulation in all regions ``[pt, eta, charge, passIso,
    mt]``; ``truth``, ``truth_variance``: its signal region ``[pt, eta, charge]``. The sizes
    of the non-closure nuisances are ``max(|a|, sigma_a)`` and ``max(|b|, sigma_b)``: what the
    closure shows, or what it could not exclude.
    """
    est = nonprompt_estimate(
        qcd, np.zeros_like(qcd), data_variance=qcd_variance, prompt_variance=None
    )
    fr = fake_rate_nonprompt(est, pt)
    e_pt = fr.nominal.sum(axis=(1, 2))
    deltas = [fr.eigen_up[..., k] - fr.nominal for k in range(fr.eigen_up.shape[-1])]
    v_est = sum(d.sum(axis=(1, 2)) ** 2 for d in deltas)
    fit = fit_fake_rate(
        truth.sum(axis=(1, 2)),
        e_pt,
        truth_variance.sum(axis=(1, 2)),
        v_est,
        pt,
        order=1,
    )
    (a, b), err = fit.coefficients, np.sqrt(np.diag(fit.covariance))
    return {
        "nonclosure_norm": float(a),
        "nonclosure_norm_error": float(err[0]),
        "nonclosure_slope": float(b),
        "nonclosure_slope_error": float(err[1]),
    }
