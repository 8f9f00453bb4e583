"""From ``hists.h5`` to the fit input: templates per process, nuisances, nonprompt, pseudo-data.

One :class:`ChannelSetup` per histograms file (one analysis):

- ``wmass``: the signal region (isolated, mT >= 40 GeV) in pt x eta x charge (30 x 48 x 2 =
  2880 bins). Processes: ``Wmunu`` (signal), the prompt backgrounds from simulation normalised
  to the data luminosity (``xsec * lumi / sumw``), and ``Nonprompt`` from data by the extended
  ABCD method (:mod:`~analysis.postprocess.nonprompt`), smoothed in pT
  (:mod:`~analysis.postprocess.smoothing`) and re-derived for every systematic variation of the
  prompt subtraction at once. QCD simulation is not used.
- ``wlike``: the same 5D histograms on Z -> mu mu events (one muon as the neutrino), signal
  region in pt x eta x charge, ``Zmumu`` signal, no nonprompt (negligible for dimuons).
- ``zdilepton``: m(ll) x pT(ll) x y(ll), ``Zmumu`` signal.

Nuisances, named so that several channels in one fit share them:

- the W mass ``mW`` (POI): the ``massShift+-100MeV`` templates of the W processes as an
  unconstrained parameter, reported as ``m_ref + 100 * theta`` MeV with ``m_ref`` the mass at
  which the samples were made (their ``mass_reference_gev``); ``mZ`` likewise from the
  Z processes when a Z channel (``wlike``, ``zdilepton``) is in the fit;
- ``pdf{k}``: the 102 PDF variations as 51 Hessian pairs (``pdf(2k-1)`` up, ``pdf(2k)`` down);
- ``qcdScaleW_{muR,muF,muRmuF}`` / ``qcdScaleZ_*``: the 7-point scale variations of the W / Z
  processes as three pairs (muR, muF, both, at 2 and 1/2); in the W-like channels the W ones
  are decorrelated per charge (``qcdScaleW_muR_q0``, ``..._q1``);
- ``pileup``, ``effStat_eta{b}_{kind}_{eig}``, ``prefiringStat_eta{b}``, ``muonScale_eta{b}``:
  the Up/Down pairs of the histograms (one-sided variations are mirrored);
- ``lumi`` (lnN 1.017 on simulation), ``norm_Top`` (1.06), ``norm_Diboson`` (1.16),
  ``norm_Z`` (1.03 on Z backgrounds of the W fit), and the unconstrained normalisation of the
  signal of each channel (``norm_W``, ``norm_Z``);
- ``nonprompt_eta{e}_q{c}_eig{k}``: the eigenvectors of the nonprompt smoothing, one set per
  eta x charge bin (decorrelated).

>>> from analysis.io import read_histograms                     # doctest: +SKIP
>>> setup = channel_setup(read_histograms("hists.h5"))          # doctest: +SKIP
>>> fit_input, summary = build_fit_input([setup], pseudodata="asimov")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import hist
import numpy as np

from analysis.postprocess.groups import (
    DATA,
    NONPROMPT,
    SIGNAL,
    W_PROCESSES,
    Z_PROCESSES,
    systematic_group,
)
from analysis.postprocess.mass_templates import (
    MASS_TEMPLATE_DEGREE,
    factorised,
    relative_variation,
)
from analysis.postprocess.nonprompt import nonprompt_estimate
from analysis.postprocess.smoothing import (
    fake_rate_nonprompt,
    fit_fake_rate,
    pt_basis,
    smooth_nonprompt,
)
from analysis.postprocess.syst_ops import decorrelate, mirror
from processors.errors import ConfigError

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

log = logging.getLogger(__name__)

ANALYSES = ("wmass", "wlike", "zdilepton")
NONPROMPT_METHODS = ("fakerate", "sidebands")
#: size (in log D) of each non-closure nuisance of the nonprompt when no QCD simulation
#: measures it: 10% in the normalisation, +-10% at the pT ends
NONCLOSURE_DEFAULT = 0.10
MASS_STEP_MEV = 100.0
#: the mass-weight labels that make the POI templates (processors.variations)
POI_UP, POI_DOWN = f"massShift{int(MASS_STEP_MEV)}MeV", f"massShift-{int(MASS_STEP_MEV)}MeV"
LUMI_KAPPA = 1.017
#: yield given to the signal in bins with no prediction at all, relative to the mean bin
FLOOR = 1e-4
#: (nuisance, processes, kappa) of the prompt-background normalisations in the W fit
BACKGROUND_NORMS = (
    ("norm_Top", ("Top",), 1.06),
    ("norm_Diboson", ("Diboson",), 1.16),
)
# LHEScaleWeight order: muR x muF in {0.5, 1, 2}^2 (processors.variations.QCD_SCALE_LABELS)
QCD_SCALE_PAIRS = {
    "muR": ("muR2_muF1", "muR0p5_muF1"),
    "muF": ("muR1_muF2", "muR1_muF0p5"),
    "muRmuF": ("muR2_muF2", "muR0p5_muF0p5"),
}


@dataclass(frozen=True)
class Nuisance:
    """A fit parameter made from labels of a variation histogram ``hist_name``: ``up`` and
    ``down`` labels (``down=None``: mirrored)."""

    name: str
    hist_name: str
    up: str
    down: str | None
    #: decorrelated: the variation acts only in bin ``index`` of axis ``axis`` of the histogram
    axis: int | None = None
    index: int | None = None

    def in_slices(self, axis: int, n: int) -> list[Nuisance]:
        """One nuisance per bin of the charge-like ``axis``, named ``<name>_q<bin>``."""
        return [
            Nuisance(f"{self.name}_q{i}", self.hist_name, self.up, self.down, axis, i)
            for i in range(n)
        ]


#: nuisances decorrelated per charge in the W-like channels (seminar: W QCD scales per charge)
PER_CHARGE = ("qcdScaleW_",)


def nuisances_of(hist_name: str, labels: list[str], process: str) -> list[Nuisance]:
    """The nuisances that the variation histogram ``hist_name`` of ``process`` provides.

    >>> [n.name for n in nuisances_of("pileup", ["pileupUp", "pileupDown"], "Top")]
    ['pileup']
    >>> nuisances_of("pdf", [f"pdf{i}" for i in range(5)], "Wmunu")[1]
    Nuisance(name='pdf2', hist_name='pdf', up='pdf3', down='pdf4', axis=None, index=None)
    """
    out: list[Nuisance] = []
    if hist_name == "massWeight":
        return out  # the mass is a POI (channel_setup)
    if hist_name == "pdf":
        rest = labels[1:]  # pdf0 is the nominal member
        for k in range(0, len(rest), 2):
            down = rest[k + 1] if k + 1 < len(rest) else None
            out.append(Nuisance(f"pdf{k // 2 + 1}", hist_name, rest[k], down))
        return out
    if hist_name == "qcdScale":
        prefix = (
            "qcdScaleW" if process in W_PROCESSES else "qcdScaleZ" if process in Z_PROCESSES else ""
        )
        if not prefix:
            return out
        for what, (up, down) in QCD_SCALE_PAIRS.items():
            if up in labels and down in labels:
                out.append(Nuisance(f"{prefix}_{what}", hist_name, up, down))
        return out
    stems: dict[str, dict[str, str]] = {}
    for label in labels:
        m = re.fullmatch(r"(.+?)(Up|Down)", label)
        stem, d = (m.group(1), m.group(2)) if m else (label, "Up")
        stems.setdefault(stem, {})[d] = label
    for stem, sides in stems.items():
        up = sides.get("Up") or sides["Down"]
        down = sides.get("Down") if "Up" in sides else None
        out.append(Nuisance(stem, hist_name, up, down))
    return out


@dataclass
class _Process:
    nominal: np.ndarray  # all axes of the analysis histogram, normalised
    variance: np.ndarray
    variations: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)
    #: the boson mass (MeV) that the massWeight variations shift, from the datasets' metadata
    mass_reference_mev: float | None = None
    datasets: list[str] = field(default_factory=list)

    def template(self, hist_name: str, label: str) -> np.ndarray:
        values, labels = self.variations[hist_name]
        return values[..., labels.index(label)]


@dataclass
class ChannelSetup:
    """The templates of one channel in its fit binning (``axes``), before the fit input.

    ``nominal[p]``, ``sumw2[p]``: per process; ``shapes[name][p] = (up, down)``: shape
    nuisances (and POIs, listed in ``pois``); ``norms``: ``(name, processes, kappa,
    constraint)``; ``data``: the observed counts; ``variations[label][p]``: every raw
    variation template by label (for ``--pseudodata LABEL``); ``closure``: true vs predicted
    nonprompt yields when the QCD simulation was available.
    """

    name: str
    analysis: str
    axes: list[Any]
    data: np.ndarray | None
    nominal: dict[str, np.ndarray]
    sumw2: dict[str, np.ndarray]
    shapes: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]
    norms: list[tuple[str, tuple[str, ...], float, str]]
    pois: dict[str, tuple[float, float, str]]
    variations: dict[str, dict[str, np.ndarray]]
    lumi_pb: float | None = None
    notes: list[str] = field(default_factory=list)
    closure: dict[str, float] = field(default_factory=dict)
    closure_projections: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(ax) for ax in self.axes)


def _load(hf: Any, lumi_pb: float | None) -> tuple[dict[str, _Process], np.ndarray | None, Any]:
    """Normalised simulation per process, data counts and the nominal axes of a hists file."""
    procs: dict[str, _Process] = {}
    data = None
    axes = None
    lumi = lumi_pb if lumi_pb is not None else hf.lumi_pb
    if lumi is None:
        lumis = [ds.lumi_pb for ds in hf.datasets.values() if ds.is_data and ds.lumi_pb]
        lumi = sum(lumis) if lumis else None
    for name, ds in hf.datasets.items():
        if "nominal" not in ds.histograms:
            raise ConfigError(f"datasets/{name}/histograms/nominal", "missing", hf.path)
        h = ds.histograms["nominal"]
        axes = axes or list(h.axes)
        if ds.is_data or ds.process == DATA:
            data = h.values() if data is None else data + h.values()
            continue
        if lumi is None:
            raise ConfigError("lumi_pb", "no data luminosity to normalise the simulation", hf.path)
        s = ds.scale(lumi)
        var = h.variances()
        p = _Process(h.values() * s, (var if var is not None else h.values()) * s * s)
        p.datasets = [name]
        ref = getattr(ds, "mass_reference_gev", None)
        p.mass_reference_mev = None if ref is None else 1000.0 * float(ref)
        for hname, vh in ds.histograms.items():
            if hname == "nominal":
                continue
            p.variations[hname] = (vh.values() * s, [str(c) for c in vh.axes[-1]])
        process = ds.process or name
        if process in procs:
            old = procs[process]
            if "massWeight" in p.variations and old.mass_reference_mev != p.mass_reference_mev:
                raise ConfigError(
                    f"datasets/{name}/mass_reference_gev",
                    f"{ref} differs from that of {old.datasets} ({old.mass_reference_mev} MeV) "
                    f"in process {process}: their mass weights cannot be added",
                    hf.path,
                )
            old.datasets.append(name)
            old.nominal = old.nominal + p.nominal
            old.variance = old.variance + p.variance
            for hname, (vals, labels) in p.variations.items():
                if hname in old.variations and old.variations[hname][1] == labels:
                    old.variations[hname] = (old.variations[hname][0] + vals, labels)
                else:
                    old.variations.pop(hname, None)
        else:
            procs[process] = p
    return procs, data, (axes, lumi)


def _mass_poi(process: str, with_z: bool) -> str | None:
    if process in W_PROCESSES:
        return "mW"
    if process in Z_PROCESSES and with_z:
        return "mZ"
    return None


def _mass_reference(procs: dict[str, _Process], poi: str, with_z: bool, path: Any) -> float:
    """The reference mass (MeV) of ``poi``: the one the samples' mass weights are relative to
    (datasets.yaml ``mass_reference_gev``), the same for every process that carries it."""
    refs = {
        name: p
        for name, p in procs.items()
        if _mass_poi(name, with_z) == poi and "massWeight" in p.variations
    }
    for name, p in refs.items():
        if p.mass_reference_mev is None:
            raise ConfigError(
                f"datasets/{p.datasets[0]}/mass_reference_gev",
                f"missing: the {poi} reference of the massWeight variations of {name}; add "
                "mass_reference_gev to the dataset in datasets.yaml and rerun the histmaker",
                path,
            )
    values = {p.mass_reference_mev for p in refs.values()}
    if len(values) != 1:
        raise ConfigError(
            "mass_reference_gev",
            f"the processes of {poi} disagree: "
            + ", ".join(f"{n}: {p.mass_reference_mev} MeV" for n, p in refs.items()),
            path,
        )
    return float(values.pop())


def channel_setup(
    hf: Any,
    *,
    analysis: str | None = None,
    name: str | None = None,
    with_z_mass: bool | None = None,
    smoothing: bool = True,
    smoothing_order: int = 2,
    smoothing_prior: float = 1.0,
    lumi_pb: float | None = None,
    mass_template_degree: int | None = MASS_TEMPLATE_DEGREE,
    raw_mass_templates: bool = False,
    nonprompt_method: str = "fakerate",
    signal_template: str = "factorised",
) -> ChannelSetup:
    """Templates and nuisances of one analysis from its histograms file (``HistogramsFile``
    of :func:`analysis.io.read_histograms`).

    ``with_z_mass``: make the Z-mass templates the ``mZ`` POI (default: for Z analyses only).
    ``smoothing_order`` / ``smoothing_prior``: the nonprompt pT smoothing
    (:func:`~analysis.postprocess.smoothing.fit_exp_poly`); order 2 with a prior width of 1
    closes on generated samples down to ~1 nonprompt event per bin and slice, where a cubic
    extrapolates wildly at the pT edges.
    ``mass_template_degree``: the mass (POI) templates are measured in the eta-summed
    projection and smoothed in pT by a Legendre polynomial of this degree
    (:mod:`~analysis.postprocess.mass_templates`; ``None``: projected, not smoothed);
    ``raw_mass_templates``: the per-bin ratios instead (biased towards the reference mass
    when the simulation is small: docs/validation.md).
    ``nonprompt_method``: ``"fakerate"`` (the default: fake rates and region C's pT shape
    measured per charge in the eta-summed projection,
    :func:`~analysis.postprocess.smoothing.fake_rate_nonprompt`) or ``"sidebands"`` (every
    sideband smoothed per eta x charge slice; biased upwards on small samples:
    docs/validation.md).
    ``signal_template``: ``"factorised"`` (the default for the W and W-like analyses): the
    nominal of every process that carries a mass POI is rebuilt from its pT x charge and eta x
    charge marginals (:func:`~analysis.postprocess.mass_templates.factorised`), and each of its
    variations keeps its per-bin relative effect on it; ``"raw"``: the simulation bin by bin
    (its per-bin noise pulls the mass low on small samples: docs/validation.md).
    Without a data dataset, the sum of all simulation (QCD included) stands in for the data.
    """
    analysis = analysis or hf.analysis or "wmass"
    if analysis not in ANALYSES:
        raise ConfigError("analysis", f"unknown {analysis!r}; known {ANALYSES}", hf.path)
    if signal_template not in ("factorised", "raw"):
        raise ConfigError("signal_template", f"{signal_template!r}: choose factorised or raw")
    if nonprompt_method not in NONPROMPT_METHODS:
        raise ConfigError(
            "nonprompt_method", f"unknown {nonprompt_method!r}; known {NONPROMPT_METHODS}"
        )
    if with_z_mass is None:
        with_z_mass = analysis != "wmass"
    procs, data, (axes, lumi) = _load(hf, lumi_pb)
    notes: list[str] = []
    qcd = procs.pop("QCD", None)
    if data is None:
        data = sum(p.nominal for p in procs.values()) + (qcd.nominal if qcd else 0.0)
        notes.append("no data in the file: the sum of all simulation (QCD included) is the data")

    w_like = analysis in ("wmass", "wlike")
    if w_like:
        names = [ax.name for ax in axes]
        if names[:5] != ["pt", "eta", "charge", "passIso", "mt"]:
            raise ConfigError("axes", f"expected pt, eta, charge, passIso, mt; got {names}")

        def fit_region(x: np.ndarray) -> np.ndarray:
            return x[:, :, :, 1, 2]  # isolated, mT >= 40 GeV

        fit_axes = axes[:3]
    else:

        def fit_region(x: np.ndarray) -> np.ndarray:
            return x

        fit_axes = axes

    # nuisances per process (the POI first)
    per_process: dict[str, list[Nuisance]] = {}
    for pname, p in procs.items():
        nus = []
        poi = _mass_poi(pname, with_z_mass)
        if poi and "massWeight" in p.variations:
            labels = p.variations["massWeight"][1]
            if POI_UP in labels and POI_DOWN in labels:
                nus.append(Nuisance(poi, "massWeight", POI_UP, POI_DOWN))
        for hname, (_, labels) in p.variations.items():
            for nu in nuisances_of(hname, labels, pname):
                if w_like and nu.name.startswith(PER_CHARGE):
                    nus.extend(nu.in_slices(2, p.nominal.shape[2]))
                else:
                    nus.append(nu)
        per_process[pname] = nus

    # the POI templates from the projection on the axes that carry the mass information
    along_name, summed_names = ("pt", ("eta",)) if w_like else ("mll", ("ptll", "yll"))
    axis_names = [ax.name for ax in axes]
    summed = tuple(axis_names.index(a) for a in summed_names if a in axis_names)
    along = axis_names.index(along_name) if along_name in axis_names else None
    if not w_like:
        mass_template_degree = None  # the Z line shape in mll: projected, not smoothed

    def poi_relative(p: _Process, varied: np.ndarray) -> np.ndarray:
        rel = relative_variation(
            p.nominal, varied, sum_axes=summed, along=along, degree=mass_template_degree
        )
        return np.broadcast_to(rel, p.nominal.shape)

    def poi_template(p: _Process, varied: np.ndarray) -> np.ndarray:
        if raw_mass_templates:
            return varied
        return p.nominal * poi_relative(p, varied)

    def templates(p: _Process, nu: Nuisance) -> tuple[np.ndarray, np.ndarray]:
        up = p.template(nu.hist_name, nu.up)
        down = p.template(nu.hist_name, nu.down) if nu.down else mirror(p.nominal, up)
        if nu.hist_name == "massWeight":
            up, down = poi_template(p, up), poi_template(p, down)
        if nu.axis is not None:  # only slice nu.index of nu.axis moves
            pair = np.stack([up, down], axis=-1)
            one = np.array([nu.index])
            per_slice = decorrelate(p.nominal, pair, nu.axis, slices=[one])[..., 0, :]
            up, down = per_slice[..., 0], per_slice[..., 1]
        return up, down

    def positive(x: np.ndarray) -> np.ndarray:
        # negative-weight events can leave a bin below 0: the fit needs yields >= 0
        return np.clip(fit_region(x), 0, None)

    shapes: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for pname, nus in per_process.items():
        for nu in nus:
            up, down = templates(procs[pname], nu)
            shapes.setdefault(nu.name, {})[pname] = (positive(up), positive(down))

    nominal = {p: positive(v.nominal) for p, v in procs.items()}
    sumw2 = {p: fit_region(v.variance) for p, v in procs.items()}
    if w_like and signal_template == "factorised":
        # the fit region keeps the leading axes (pt, eta, charge) in their order
        eta_axis, charge_axis = axis_names.index("eta"), axis_names.index("charge")
        for pname in [p for p in procs if _mass_poi(p, with_z_mass)]:
            raw = nominal[pname]
            smooth = factorised(raw, axis=eta_axis, per=charge_axis)
            for nu_name, per_proc in shapes.items():
                if pname not in per_proc:
                    continue
                if nu_name == _mass_poi(pname, with_z_mass) and not raw_mass_templates:
                    # the POI: its smooth relative variation, defined in every bin
                    p = procs[pname]
                    per_proc[pname] = tuple(
                        smooth * fit_region(poi_relative(p, p.template("massWeight", label)))
                        for label in (POI_UP, POI_DOWN)
                    )
                else:  # every other variation keeps its per-bin relative effect
                    per_proc[pname] = tuple(
                        smooth * np.divide(v, raw, out=np.ones_like(raw), where=raw > 0)
                        for v in per_proc[pname]
                    )
            nominal[pname] = smooth
            sumw2[pname] = factorised(sumw2[pname], axis=eta_axis, per=charge_axis)

    closure: dict[str, float] = {}
    projections: dict[str, dict[str, list[float]]] = {}

    if analysis == "wmass":
        prompt = sum(p.nominal for p in procs.values())
        prompt_var = sum(p.variance for p in procs.values())
        order = list(shapes)
        delta = np.zeros((*prompt.shape, len(order), 2))
        column = {nu_name: j for j, nu_name in enumerate(order)}
        for pname, nus in per_process.items():
            for nu in nus:
                up, down = templates(procs[pname], nu)
                delta[..., column[nu.name], 0] += up - procs[pname].nominal
                delta[..., column[nu.name], 1] += down - procs[pname].nominal
        delta = delta.reshape(*prompt.shape, 2 * len(order))
        est = nonprompt_estimate(data, prompt, data_variance=data, prompt_variance=prompt_var)
        varied = nonprompt_estimate(data, prompt[..., None] + delta)
        pt = fit_axes[0].centers
        if smoothing and nonprompt_method == "fakerate":
            fr = fake_rate_nonprompt(est, pt, varied=varied, order=smoothing_order)
            np_nominal, np_varied = fr.nominal, fr.variations
            for k in range(fr.eigen_up.shape[-1]):
                up = fr.eigen_up[..., k]
                shapes[f"nonprompt_shape_eig{k}"] = {NONPROMPT: (up, mirror(np_nominal, up))}
            n_eta, n_q = np_nominal.shape[1:]
            for e in range(n_eta):
                for q in range(n_q):
                    up = np_nominal.copy()
                    up[:, e, q] = fr.slice_up[:, e, q]
                    shapes[f"nonprompt_eta{e}_q{q}_norm"] = {
                        NONPROMPT: (up, mirror(np_nominal, up))
                    }
            sumw2[NONPROMPT] = np.zeros(np_nominal.shape)
        elif smoothing:
            smooth = smooth_nonprompt(
                est, pt, varied=varied, order=smoothing_order, prior_width=smoothing_prior
            )
            np_nominal, np_varied = smooth.nominal, smooth.variations
            n_eta, n_q = np_nominal.shape[1:]
            flat = np_nominal.reshape(len(pt), n_eta * n_q)
            eig = smooth.eigen_up.reshape(len(pt), n_eta * n_q, -1)
            per_slice = decorrelate(flat, eig, axis=1)  # [pt, slices, slices, k]
            for s in range(n_eta * n_q):
                e, q = divmod(s, n_q)
                for k in range(eig.shape[-1]):
                    up = per_slice[:, :, s, k].reshape(np_nominal.shape)
                    shapes[f"nonprompt_eta{e}_q{q}_eig{k}"] = {
                        NONPROMPT: (up, mirror(np_nominal, up))
                    }
            sumw2[NONPROMPT] = np.zeros(np_nominal.shape)
        else:
            np_nominal, np_varied = est.d, varied.d
            sumw2[NONPROMPT] = est.d_variance
        nominal[NONPROMPT] = np_nominal
        np_varied = np_varied.reshape(*np_nominal.shape, len(order), 2)
        for j, nu_name in enumerate(order):
            shapes[nu_name][NONPROMPT] = (np_varied[..., j, 0], np_varied[..., j, 1])
        if qcd is not None:
            closure = {
                "qcd_mc_in_signal_region": float(fit_region(qcd.nominal).sum()),
                "qcd_mc_stat": float(np.sqrt(fit_region(qcd.variance).sum())),
                "nonprompt_abcd": float(est.d.sum()),
                "nonprompt_abcd_stat": float(np.sqrt(est.d_variance.sum())),
                "nonprompt_smoothed": float(np_nominal.sum()),
            }
            stat_deltas = [
                per[NONPROMPT][0] - np_nominal
                for n, per in shapes.items()
                if n.startswith("nonprompt_") and NONPROMPT in per
            ]
            args = (fit_region(qcd.nominal), fit_region(qcd.variance), [a.name for a in fit_axes])
            projections = closure_projections(np_nominal, stat_deltas, *args)
            closure.update(nonprompt_closure(projections))
            if smoothing and nonprompt_method == "fakerate":
                closure.update(
                    nonclosure_sizes(qcd.nominal, qcd.variance, *args[:2], np.asarray(pt))
                )
        if smoothing and nonprompt_method == "fakerate":
            # non-closure: a normalisation and a pT slope of log D, as large as the closure
            # on the QCD simulation shows or cannot exclude (defaults without the simulation)
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
                shapes[f"nonprompt_nonclosure_{what}"] = {NONPROMPT: (up, mirror(np_nominal, up))}

    # every raw variation by label, for pseudo-data
    variations: dict[str, dict[str, np.ndarray]] = {}
    for pname, p in procs.items():
        for _hname, (vals, labels) in p.variations.items():
            for i, label in enumerate(labels):
                variations.setdefault(label, {})[pname] = positive(vals[..., i])

    mc = tuple(p for p in procs)
    norms: list[tuple[str, tuple[str, ...], float, str]] = [("lumi", mc, LUMI_KAPPA, "gaussian")]
    signal = SIGNAL if analysis == "wmass" else "Zmumu"
    if analysis == "wmass":
        for nname, which, kappa in BACKGROUND_NORMS:
            present = tuple(p for p in which if p in procs)
            if present:
                norms.append((nname, present, kappa, "gaussian"))
        zs = tuple(p for p in Z_PROCESSES if p in procs)
        if zs:  # free, and the same parameter, when a Z channel measures it in the same fit
            norms.append(("norm_Z", zs, *((2.0, "none") if with_z_mass else (1.03, "gaussian"))))
        ws = tuple(p for p in W_PROCESSES if p in procs)
        norms.append(("norm_W", ws, 2.0, "none"))
    else:
        norms.append(("norm_Z", tuple(p for p in Z_PROCESSES if p in procs), 2.0, "none"))
    pois = {}
    for pname in procs:
        poi = _mass_poi(pname, with_z_mass)
        if poi and poi in shapes and poi not in pois:
            reference = _mass_reference(procs, poi, with_z_mass, hf.path)
            pois[poi] = (reference, MASS_STEP_MEV, "MeV")
    if signal not in procs:
        raise ConfigError("datasets", f"no {signal} simulation in the histograms", hf.path)
    # processes with no yield in this selection (e.g. W in the Z dilepton channel) are left out
    for p in [p for p, v in nominal.items() if v.sum() <= 0 and p != signal]:
        del nominal[p], sumw2[p]
        for per_proc in shapes.values():
            per_proc.pop(p, None)
        for per_label in variations.values():
            per_label.pop(p, None)
        norms = [(n, tuple(q for q in ps if q != p), k, c) for n, ps, k, c in norms]
        notes.append(f"{p} has no yield in this channel: left out")
    shapes = {n: per for n, per in shapes.items() if per}
    norms = [entry for entry in norms if entry[1]]
    pois = {n: v for n, v in pois.items() if n in shapes}
    # a bin without any prediction cannot hold data in a Poisson fit: give the signal a floor
    total = sum(nominal.values())
    empty = total <= 0
    if empty.any():
        floor = FLOOR * max(float(total.mean()), 1.0)
        nominal[signal] = np.where(empty, floor, nominal[signal])
        # its variations get the same floor there (log-kappa 0): a template left at 0 would
        # claim a factor-10 effect of every signal nuisance in every floored bin
        for per_proc in shapes.values():
            if signal in per_proc:
                per_proc[signal] = tuple(np.where(empty, floor, v) for v in per_proc[signal])
        notes.append(
            f"{int(empty.sum())} of {empty.size} bins have no prediction: "
            f"{signal} set to {floor:.2g} there (sparse simulation for this binning)"
        )
    return ChannelSetup(
        name=name or analysis,
        analysis=analysis,
        axes=list(fit_axes),
        data=fit_region(data),
        nominal=nominal,
        sumw2=sumw2,
        shapes=shapes,
        norms=norms,
        pois=pois,
        variations=variations,
        lumi_pb=lumi,
        notes=notes,
        closure=closure,
        closure_projections=projections,
    )


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


def project(setup: ChannelSetup, fitvar: str) -> ChannelSetup:
    """The channel in the axes named by ``fitvar`` (``"pt-eta-charge"``, ``"pt-eta"``,
    ``"pt"``, ...): the other axes are summed over.

    >>> # project(setup, "pt-eta")  # one charge-inclusive pT x eta channel: 1440 bins
    """
    names = [ax.name for ax in setup.axes]
    wanted = [v for v in fitvar.split("-") if v]
    unknown = [v for v in wanted if v not in names]
    if unknown or not wanted:
        raise ConfigError("--fitvar", f"{fitvar!r}: axes of {setup.analysis} are {names}")
    order = [names.index(v) for v in wanted]
    drop = tuple(i for i in range(len(names)) if i not in order)

    def f(x: np.ndarray | None) -> np.ndarray | None:
        if x is None:
            return None
        kept = sorted(order)
        y = x.sum(axis=drop) if drop else x
        return np.transpose(y, [kept.index(i) for i in order])

    return ChannelSetup(
        name=setup.name,
        analysis=setup.analysis,
        axes=[setup.axes[i] for i in order],
        data=f(setup.data),
        nominal={p: f(v) for p, v in setup.nominal.items()},
        sumw2={p: f(v) for p, v in setup.sumw2.items()},
        shapes={
            n: {p: (f(u), f(d)) for p, (u, d) in per.items()} for n, per in setup.shapes.items()
        },
        norms=setup.norms,
        pois=setup.pois,
        variations={k: {p: f(v) for p, v in per.items()} for k, per in setup.variations.items()},
        lumi_pb=setup.lumi_pb,
        notes=setup.notes,
        closure=setup.closure,
        closure_projections=setup.closure_projections,
    )


def _pseudodata(setup: ChannelSetup, pseudodata: str | None) -> np.ndarray:
    if pseudodata in (None, "observed", "data"):
        return setup.data
    total = sum(setup.nominal.values())
    if pseudodata == "asimov":
        return total
    if pseudodata not in setup.variations:
        known = sorted(setup.variations)
        raise ConfigError(
            "--pseudodata",
            f"no variation {pseudodata!r}; choose asimov or a label, e.g. {known[:5]}",
        )
    for p, varied in setup.variations[pseudodata].items():
        total = total - setup.nominal[p] + varied
    return total


def _hist(axes: list[Any], values: np.ndarray, variance: np.ndarray | None = None) -> hist.Hist:
    h = hist.Hist(*axes, storage=hist.storage.Weight() if variance is not None else None)
    if variance is not None:
        h[...] = np.stack([values, variance], axis=-1)
    else:
        h[...] = values
    return h


def build_fit_input(
    setups: list[ChannelSetup],
    *,
    pseudodata: str | None = None,
    signal: tuple[str, ...] = ("Wmunu", "Zmumu"),
) -> tuple[Any, str]:
    """The :class:`fit.FitInput` of one or several channels and a text summary of it.

    ``pseudodata``: ``None`` (observed data), ``"asimov"`` (the sum of the nominal
    predictions) or a variation label (e.g. ``massShift50MeV``: the nominal with that
    variation applied to every process that has it).
    """
    from fit.builder import FitInputBuilder

    b = FitInputBuilder()
    for s in setups:
        b.add_channel(s.name, _hist(s.axes, _pseudodata(s, pseudodata)))
    for s in setups:
        for p, vals in s.nominal.items():
            b.add_process(s.name, p, _hist(s.axes, vals, s.sumw2.get(p)), signal=p in signal)
    pois: dict[str, tuple[float, float, str]] = {}
    for s in setups:
        pois.update(s.pois)
    shapes: dict[str, dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]] = {}
    for s in setups:
        for nname, per_proc in s.shapes.items():
            for p, (up, down) in per_proc.items():
                shapes.setdefault(nname, {})[(s.name, p)] = (up.ravel(), down.ravel())
    for poi, (offset, scale, unit) in pois.items():
        b.add_poi(poi, variations=shapes.pop(poi), offset=offset, scale=scale, unit=unit)
    for nname, variations in shapes.items():
        b.add_systematic(nname, variations, group=systematic_group(nname))
    norms: dict[str, tuple[dict[tuple[str, str], float], str]] = {}
    for s in setups:
        for nname, procs, kappa, constraint in s.norms:
            entry = norms.setdefault(nname, ({}, constraint))
            for p in procs:
                entry[0][(s.name, p)] = kappa
    for nname, (variations, constraint) in norms.items():
        b.add_systematic(
            nname, variations, group=_norm_group(nname), constraint=constraint, kind="lnN"
        )
    fit_input = b.build()
    return fit_input, summary_text(fit_input, setups, pseudodata)


def _norm_group(name: str) -> str:
    if name in ("norm_W", "norm_Z"):
        return "Signal normalisation"
    return systematic_group(name)


def summary_text(fit_input: Any, setups: list[ChannelSetup], pseudodata: str | None) -> str:
    """The ``.log`` summary: channels, processes and yields, nuisances per group."""
    lines = ["wmass setup-fit", "=" * 60]
    for s in setups:
        ch = fit_input.channel(s.name)
        lines.append(
            f"channel {s.name} ({s.analysis}): {ch.nbins} bins "
            f"[{' x '.join(f'{ax.name} {len(ax)}' for ax in s.axes)}], lumi {s.lumi_pb} /pb"
        )
        data = fit_input.data[ch.slice].sum()
        lines.append(f"  data ({pseudodata or 'observed'}): {data:14.1f}")
        total = 0.0
        for p, vals in s.nominal.items():
            lines.append(f"  {p:<12} {vals.sum():14.1f}")
            total += vals.sum()
        lines.append(f"  {'total':<12} {total:14.1f}")
        for note in s.notes:
            lines.append(f"  note: {note}")
        for k, v in s.closure.items():
            if k.startswith(("chi2_", "ndf_")):
                continue
            lines.append(f"  closure {k}: {v:.4g}")
        for k in [k[5:] for k in s.closure if k.startswith("chi2_")]:
            chi2, ndf = s.closure[f"chi2_{k}"], s.closure[f"ndf_{k}"]
            lines.append(
                f"  nonprompt closure vs QCD simulation in {k}: chi2/ndf = {chi2:.1f}/{ndf:.0f}"
            )
    lines.append("-" * 60)
    lines.append(f"{'systematic group':<32}{'nuisances':>10}")
    counts = Counter(str(g) for g in fit_input.groups)
    for group, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        lines.append(f"{group:<32}{n:>10}")
    lines.append(f"{'total parameters':<32}{fit_input.nparams:>10}")
    pois = ", ".join(
        f"{p.name} = {p.offset:g} + {p.scale:g} * theta {p.unit}" for p in fit_input.pois
    )
    lines.append(f"POIs: {pois}")
    return "\n".join(lines) + "\n"
