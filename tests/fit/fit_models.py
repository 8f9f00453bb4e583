"""Small W-mass-like fit models with known truth, built from ``hist`` objects, for the fit tests.

A muon pT x eta x charge histogram (pT 26-56 GeV), a signal W -> mu nu whose pT spectrum is a
smeared Jacobian peak at m_W / 2 (so the +-100 MeV mass templates are real shape variations),
three backgrounds, a luminosity lnN, asymmetric normalisations, per-eta-slice efficiency shapes,
an asymmetric theory shape, MC statistics (Weight storage) and a masked channel.
"""

from __future__ import annotations

import hist
import numpy as np
from scipy import special

from analysis.constants import MW_REF as MW  # GeV, the reference mass of the templates
from fit import FitInputBuilder

PT_EDGES = np.linspace(26.0, 56.0, 16)


def _axes(n_eta: int) -> list:
    return [
        hist.axis.Variable(PT_EDGES, name="pt"),
        hist.axis.Regular(n_eta, -2.4, 2.4, name="eta"),
        hist.axis.Regular(2, -2.0, 2.0, name="charge"),
    ]


def _hist(values: np.ndarray, n_eta: int, rel_mc_stat: float | None) -> hist.Hist:
    h = hist.Hist(*_axes(n_eta), storage=hist.storage.Weight())
    h.view().value = values
    h.view().variance = (rel_mc_stat * values) ** 2 if rel_mc_stat else values * 0.0
    return h


def jacobian_peak(mw: float) -> np.ndarray:
    """Signal fraction per pT bin: a Jacobian edge at mw/2 smeared by 2.5 GeV (analytic integral)."""

    def cdf(pt):
        # ~ pT / sqrt(1 - (2pT/m)^2) below the edge, smeared: use a smooth stand-in with the
        # same edge position: rising linear part times a Gaussian-smeared step at m/2
        edge = mw / 2.0
        return 0.5 * (1 + special.erf((pt - edge) / (2.5 * np.sqrt(2)))) * 0.6 + pt / 60.0

    c = cdf(PT_EDGES)
    return np.diff(c)


def w_like_model(
    *,
    n_eta: int = 4,
    scale: float = 2000.0,
    asymmetric: bool = True,
    mc_stat: float | None = 0.01,
    masked: bool = True,
    seed: int = 7,
    data: np.ndarray | str = "asimov",
):
    """A :class:`fit.FitInput` and the templates; ``data="asimov"`` puts the nominal sum as data."""
    rng = np.random.default_rng(seed)
    npt = PT_EDGES.size - 1
    shape = (npt, n_eta, 2)
    eta_w = 1.0 - 0.1 * np.abs(np.linspace(-1, 1, n_eta))
    sig_pt = jacobian_peak(MW)

    def sig_at(mw):
        return (
            scale * jacobian_peak(mw)[:, None, None] * eta_w[None, :, None] * np.array([0.45, 0.55])
        )

    sig = sig_at(MW)
    ptc = 0.5 * (PT_EDGES[1:] + PT_EDGES[:-1])
    zmm = 0.15 * scale * (sig_pt.mean() * np.exp(-(ptc - 40) / 30))[:, None, None] * np.ones(shape)
    top = 0.03 * scale * (sig_pt.mean())[None] * np.ones(shape)
    qcd = 0.2 * scale * (sig_pt.mean() * np.exp(-(ptc - 26) / 8))[:, None, None] * np.ones(shape)
    nominal = {"Wmunu": sig, "Zmumu": zmm, "Top": top, "QCD": qcd}

    b = FitInputBuilder()
    total = sum(nominal.values())
    b.add_channel(
        "sr", _hist(total, n_eta, None) if isinstance(data, str) else _hist(data, n_eta, None)
    )
    for name, vals in nominal.items():
        b.add_process(
            "sr",
            name,
            _hist(vals, n_eta, mc_stat if name != "QCD" else None),
            signal=name == "Wmunu",
        )
    if masked:
        b.add_channel("sr_inclusive", None, masked=True, nbins=npt)
        for name, vals in nominal.items():
            b.add_process("sr_inclusive", name, vals.sum(axis=(1, 2)))
    up, down = sig_at(MW + 0.1), sig_at(MW - 0.1)
    mass_vars = {("sr", "Wmunu"): (_hist(up, n_eta, None), _hist(down, n_eta, None))}
    if masked:
        mass_vars[("sr_inclusive", "Wmunu")] = (up.sum(axis=(1, 2)), down.sum(axis=(1, 2)))
    b.add_poi("mW", variations=mass_vars, offset=MW * 1000, scale=100.0, unit="MeV")
    mc = ["Wmunu", "Zmumu", "Top"]
    b.add_norm("lumi", mc, 1.017, group="luminosity")
    b.add_norm("norm_Zmumu", ["Zmumu"], (1.04, 0.97) if asymmetric else 1.04, group="normalisation")
    b.add_norm("norm_Top", ["Top"], 1.06, group="normalisation")
    b.add_norm("norm_QCD", ["QCD"], 1.15, group="nonprompt")
    for i in range(n_eta):
        var = {}
        for name in mc:
            f = np.ones(shape)
            f[:, i, :] = 1.0 + 0.01 * (1 + 0.5 * (ptc[:, None] - 40) / 15)
            var[("sr", name)] = _hist(nominal[name] * f, n_eta, None)
        b.add_systematic(f"eff_eta{i}", var, group="muon efficiency")
    slope = (ptc - 40) / 15
    th_up = sig * (1 + 0.02 * slope)[:, None, None]
    th_dn = sig * (1 - 0.015 * slope - 0.005)[:, None, None]
    th = (
        (_hist(th_up, n_eta, None), _hist(th_dn, n_eta, None))
        if asymmetric
        else _hist(th_up, n_eta, None)
    )
    b.add_systematic("theory_ptW", {("sr", "Wmunu"): th}, group="theory")
    qcd_shape = qcd * (1 + 0.05 * rng.normal(size=shape))
    b.add_systematic("qcd_shape", {("sr", "QCD"): _hist(qcd_shape, n_eta, None)}, group="nonprompt")
    return b.build()
