"""From ``hists.h5`` to the templates of one channel: per process, with its nuisances and POIs.

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
- ``nonprompt_*``: the nonprompt's own nuisances (statistical, per eta x charge bin where
  decorrelated, and its non-closure: :mod:`~analysis.postprocess.nonprompt_templates`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.postprocess.groups import (
    NONPROMPT,
    SIGNAL,
    W_PROCESSES,
    Z_PROCESSES,
)
from analysis.postprocess.mass_templates import (
    MASS_TEMPLATE_DEGREE,
    SIGNAL_CORRELATION_DEGREE,
    SIGNAL_TEMPLATES,
    correlated,
    factorised,
    relative_variation,
)
from analysis.postprocess.nonprompt_templates import NONPROMPT_METHODS, nonprompt_templates
from analysis.postprocess.nuisances import (
    MASS_STEP_MEV,
    PER_CHARGE,
    POI_DOWN,
    POI_UP,
    Nuisance,
    nuisances_of,
)
from analysis.postprocess.processes import (
    ProcessTemplates,
    load_processes,
    mass_poi,
    mass_reference,
)
from analysis.postprocess.syst_ops import decorrelate, mirror
from processors.errors import ConfigError

__all__ = ["ANALYSES", "ChannelSetup", "channel_setup", "project"]

ANALYSES = ("wmass", "wlike", "zdilepton")
LUMI_KAPPA = 1.017
#: yield given to the signal in bins with no prediction at all, relative to the mean bin
FLOOR = 1e-4
#: (nuisance, processes, kappa) of the prompt-background normalisations in the W fit
BACKGROUND_NORMS = (
    ("norm_Top", ("Top",), 1.06),
    ("norm_Diboson", ("Diboson",), 1.16),
)


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
    signal_template: str = "correlated",
    signal_correlation_degree: int = SIGNAL_CORRELATION_DEGREE,
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
    ``signal_template``: how the nominal of every process that carries a mass POI is built in
    the W and W-like analyses (each of its variations keeps its per-bin relative effect on
    it, the mass templates are the smooth relative variations above): ``"correlated"`` (the
    default): rebuilt from its pT x charge and eta x charge marginals, with the pT-eta
    correlation within a charge put back by a Legendre polynomial in pT of degree
    ``signal_correlation_degree`` per eta x charge slice
    (:func:`~analysis.postprocess.mass_templates.correlated`); ``"factorised"``: the two
    marginals only (:func:`~analysis.postprocess.mass_templates.factorised`; m_W ~20 MeV high
    at 5M events); ``"raw"``: the simulation bin by bin (its per-bin noise pulls the mass low
    on small samples). All three are measured in docs/validation.md.
    Without a data dataset, the sum of all simulation (QCD included) stands in for the data.
    """
    analysis = analysis or hf.analysis or "wmass"
    if analysis not in ANALYSES:
        raise ConfigError("analysis", f"unknown {analysis!r}; known {ANALYSES}", hf.path)
    if signal_template not in SIGNAL_TEMPLATES:
        raise ConfigError(
            "signal_template", f"{signal_template!r}: choose one of {', '.join(SIGNAL_TEMPLATES)}"
        )
    if nonprompt_method not in NONPROMPT_METHODS:
        raise ConfigError(
            "nonprompt_method", f"unknown {nonprompt_method!r}; known {NONPROMPT_METHODS}"
        )
    if with_z_mass is None:
        with_z_mass = analysis != "wmass"
    procs, data, (axes, lumi) = load_processes(hf, lumi_pb)
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
        poi = mass_poi(pname, with_z_mass)
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

    def poi_relative(p: ProcessTemplates, varied: np.ndarray) -> np.ndarray:
        rel = relative_variation(
            p.nominal, varied, sum_axes=summed, along=along, degree=mass_template_degree
        )
        return np.broadcast_to(rel, p.nominal.shape)

    def poi_template(p: ProcessTemplates, varied: np.ndarray) -> np.ndarray:
        if raw_mass_templates:
            return varied
        return p.nominal * poi_relative(p, varied)

    def templates(p: ProcessTemplates, nu: Nuisance) -> tuple[np.ndarray, np.ndarray]:
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
    if w_like and signal_template != "raw":
        # the fit region keeps the leading axes (pt, eta, charge) in their order
        pt_axis, eta_axis = axis_names.index("pt"), axis_names.index("eta")
        charge_axis = axis_names.index("charge")
        for pname in [p for p in procs if mass_poi(p, with_z_mass)]:
            raw = nominal[pname]
            flat = factorised(raw, axis=eta_axis, per=charge_axis)
            smooth = flat
            if signal_template == "correlated":
                smooth = correlated(
                    raw,
                    axis=eta_axis,
                    along=pt_axis,
                    per=charge_axis,
                    degree=signal_correlation_degree,
                )
            for nu_name, per_proc in shapes.items():
                if pname not in per_proc:
                    continue
                if nu_name == mass_poi(pname, with_z_mass) and not raw_mass_templates:
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
            # the simulation's variance follows the yield (as for unweighted events)
            sumw2[pname] = factorised(sumw2[pname], axis=eta_axis, per=charge_axis) * np.divide(
                smooth, flat, out=np.ones_like(flat), where=flat > 0
            )
            nominal[pname] = smooth

    closure: dict[str, float] = {}
    projections: dict[str, dict[str, list[float]]] = {}
    if analysis == "wmass":
        # the nonprompt from data minus the prompt simulation, in every variation of the latter
        prompt = sum(p.nominal for p in procs.values())
        prompt_var = sum(p.variance for p in procs.values())
        prompt_names = list(shapes)
        delta = np.zeros((*prompt.shape, len(prompt_names), 2))
        column = {nu_name: j for j, nu_name in enumerate(prompt_names)}
        for pname, nus in per_process.items():
            for nu in nus:
                up, down = templates(procs[pname], nu)
                delta[..., column[nu.name], 0] += up - procs[pname].nominal
                delta[..., column[nu.name], 1] += down - procs[pname].nominal
        nonprompt = nonprompt_templates(
            data,
            prompt,
            prompt_var,
            delta,
            prompt_names,
            fit_axes,
            fit_region,
            qcd=None if qcd is None else (qcd.nominal, qcd.variance),
            smoothing=smoothing,
            method=nonprompt_method,
            order=smoothing_order,
            prior=smoothing_prior,
        )
        nominal[NONPROMPT] = nonprompt.nominal
        sumw2[NONPROMPT] = nonprompt.sumw2
        for nu_name, pair in nonprompt.shapes.items():
            shapes.setdefault(nu_name, {})[NONPROMPT] = pair
        closure, projections = nonprompt.closure, nonprompt.projections

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
        poi = mass_poi(pname, with_z_mass)
        if poi and poi in shapes and poi not in pois:
            reference = mass_reference(procs, poi, with_z_mass, hf.path)
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
