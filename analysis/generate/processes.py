"""The hard processes of the generator, at particle level: W -> mu nu, W -> tau nu, Z -> mu mu,
Z -> tau tau, ttbar, dibosons and QCD multijet with non-prompt muons.

Each process returns a :class:`GenEvents`: fixed-width ``[n, k]`` arrays of the final-state
muon candidates (with a validity mask), the summed neutrino momentum, the hard system used by
the theory weights, the ``GenPart`` list and, for the W and Z processes, the Breit-Wigner mass
weights of the boson. The detector (:mod:`analysis.generate.detector`) turns it into reco
branches.
"""

from __future__ import annotations

import numpy as np

from analysis import constants
from analysis.constants import GAMMA_W, GAMMA_Z, MW_REF, MZ_REF
from analysis.generate.genevents import (
    DIRECT_PROMPT_TAU_DECAY,
    LAST_COPY,
    PROMPT,
    GenEvents,
    ProcessSpec,
    gen_block,
    p4_stack,
)
from analysis.generate.physics import (
    MUON_MASS,
    TAU_MASS,
    FourVector,
    breit_wigner_density,
    breit_wigner_s,
    cos_theta_one_plus_c2,
    cos_theta_v_minus_a,
    four_vector,
    sample_boson_pt,
    sample_rapidity,
    tau_to_muon,
    two_body_decay,
)

__all__ = [
    "GAMMA_W",
    "GAMMA_Z",
    "MASS_SHIFTS_MEV",
    "MW_REF",
    "MZ_REF",
    "PROCESSES",
    "GenEvents",
    "ProcessSpec",
    "diboson",
    "qcd",
    "ttbar",
    "wmunu",
    "wtaunu",
    "zmumu",
    "ztautau",
]

# the masses and widths: analysis.constants (re-exported here, their old home)
MASS_SHIFTS_MEV = np.asarray(constants.MASS_SHIFTS_MEV)
BR_W_MU = 0.1063
BR_W_TAU = 0.1138
BR_TAU_MU = 0.1739
W_PLUS_FRACTION = 1.4 / 2.4  # W+ : W- = 1.4 : 1


def _boson(
    rng: np.random.Generator,
    n: int,
    mass: float,
    width: float,
    ref_mass: float,
    *,
    p0: float,
    power: float,
    y_sigma: np.ndarray | float,
    y_max: float = 4.0,
) -> tuple[FourVector, np.ndarray, np.ndarray, np.ndarray]:
    """A Breit-Wigner boson with a pT and rapidity spectrum; returns ``(p4, y, s, mass
    weights [n, 21] of shifts around ref_mass)``."""
    s = breit_wigner_s(rng, n, mass, width)
    pt = sample_boson_pt(rng, n, p0, power)
    y = sample_rapidity(rng, n, y_sigma, y_max)
    phi = rng.uniform(-np.pi, np.pi, n)
    p4 = four_vector(pt, y, phi, np.sqrt(s), rapidity=True)
    nominal = breit_wigner_density(s, ref_mass, width)
    weights = np.stack(
        [breit_wigner_density(s, ref_mass + d / 1000.0, width) / nominal for d in MASS_SHIFTS_MEV],
        axis=1,
    )
    weights[:, len(MASS_SHIFTS_MEV) // 2] = 1.0
    return p4, y, s, weights


def _quark_sign(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    """Direction (+-1 along z) of the quark: the valence quark at large |y| follows the boost."""
    p_along = 0.5 + 0.5 * np.tanh(np.abs(y) / 1.5)
    return np.where(rng.random(len(y)) < p_along, np.sign(y + 1e-12), -np.sign(y + 1e-12))


def _w_decay(rng, w: FourVector, charge: np.ndarray, y: np.ndarray, lepton_mass: float):
    """V-A decay W -> l nu: the charged lepton follows (1 -+ cos theta)^2 for W+-, theta to
    the quark direction, in the W rest frame."""
    n = len(charge)
    c = cos_theta_v_minus_a(rng, -charge) * _quark_sign(rng, y)
    lep, nu = two_body_decay(w, c, rng.uniform(-np.pi, np.pi, n), lepton_mass, 0.0)
    return lep, nu


def _w_boson(rng, n, mw):
    charge = np.where(rng.random(n) < W_PLUS_FRACTION, 1, -1)
    y_sigma = np.where(charge > 0, 2.15, 1.95)
    w, y, s, mass_weights = _boson(rng, n, mw, GAMMA_W, MW_REF, p0=5.5, power=2.3, y_sigma=y_sigma)
    return w, charge, y, s, mass_weights


def _system(w: FourVector, y, s, charge):
    return np.hypot(w[1], w[2]), y, np.sqrt(s), charge


def _boson_events(
    mus: list[FourVector],
    charge: np.ndarray,
    nu: tuple[np.ndarray, np.ndarray],
    system: tuple[np.ndarray, ...],
    particles: list,
    mass_weights: np.ndarray,
    *,
    first_slot: int,
    valid: np.ndarray | None = None,
    flight: float = 0.0,
) -> GenEvents:
    """Events of a W or Z process: ``k = len(mus)`` prompt muons (``[n, k]`` ``charge``; all
    ``valid`` by default) outside any jet (isolation 0), at GenPart slots ``first_slot ...``,
    with impact parameters of 20 um width plus ``flight`` (cm, a tau's); ``nu``: the
    neutrinos' summed ``(px, py)``; ``system``: the boson's ``(pt, y, mass, charge)``;
    ``particles``: the GenPart slots (:func:`~analysis.generate.genevents.gen_block`)."""
    n, k = charge.shape
    gen, gen_valid = gen_block(particles)
    return GenEvents(
        n,
        p4_stack(mus),
        charge,
        np.ones((n, k), bool) if valid is None else valid,
        np.ones((n, k), bool),
        np.tile(np.arange(first_slot, first_slot + k), (n, 1)),
        np.zeros((n, k)),
        np.full((n, k), 0.002) + flight,
        nu[0],
        nu[1],
        *system,
        gen,
        gen_valid,
        mass_weights=mass_weights,
    )


def wmunu(rng: np.random.Generator, n: int, *, mw: float = MW_REF) -> GenEvents:
    """W -> mu nu."""
    w, charge, y, s, mass_weights = _w_boson(rng, n, mw)
    mu, nu = _w_decay(rng, w, charge, y, MUON_MASS)
    ok = np.ones(n, bool)
    particles = [
        (w, 24 * charge, 62, LAST_COPY, -1, ok),
        (mu, -13 * charge, 1, PROMPT | LAST_COPY, 0, ok),
        (nu, 14 * charge, 1, PROMPT | LAST_COPY, 0, ok),
    ]
    system = _system(w, y, s, charge)
    nu_sum = (nu[1], nu[2])
    return _boson_events(
        [mu], charge[:, None], nu_sum, system, particles, mass_weights, first_slot=1
    )


def wtaunu(rng: np.random.Generator, n: int, *, mw: float = MW_REF) -> GenEvents:
    """W -> tau nu, tau -> mu nu nu (the muon is soft)."""
    w, charge, y, s, mass_weights = _w_boson(rng, n, mw)
    tau, nu_w = _w_decay(rng, w, charge, y, TAU_MASS)
    mu, nus = tau_to_muon(rng, tau)
    ok = np.ones(n, bool)
    particles = [
        (w, 24 * charge, 62, LAST_COPY, -1, ok),
        (tau, -15 * charge, 2, PROMPT | LAST_COPY, 0, ok),
        (nu_w, 16 * charge, 1, PROMPT | LAST_COPY, 0, ok),
        (mu, -13 * charge, 1, DIRECT_PROMPT_TAU_DECAY | LAST_COPY, 1, ok),
    ]
    system = _system(w, y, s, charge)
    nu_sum = (nu_w[1] + nus[1], nu_w[2] + nus[2])
    return _boson_events(
        [mu], charge[:, None], nu_sum, system, particles, mass_weights, first_slot=3, flight=0.003
    )


def _z_boson(rng, n):
    return _boson(rng, n, MZ_REF, GAMMA_Z, MZ_REF, p0=6.0, power=2.3, y_sigma=2.0)


def _z_decay(rng, z, m):
    n = len(z[0])
    c = cos_theta_one_plus_c2(rng, n)
    return two_body_decay(z, c, rng.uniform(-np.pi, np.pi, n), m, m)  # (l-, l+)


def zmumu(rng: np.random.Generator, n: int, **_) -> GenEvents:
    """Z -> mu mu (MEParamWeight: Z-mass shifts of +-100 MeV, for the W-like analysis)."""
    z, y, s, mass_weights = _z_boson(rng, n)
    mu_m, mu_p = _z_decay(rng, z, MUON_MASS)
    ok = np.ones(n, bool)
    particles = [
        (z, 23, 62, LAST_COPY, -1, ok),
        (mu_m, 13, 1, PROMPT | LAST_COPY, 0, ok),
        (mu_p, -13, 1, PROMPT | LAST_COPY, 0, ok),
    ]
    charges, system = np.tile(np.array([-1, 1]), (n, 1)), _system(z, y, s, np.zeros(n, int))
    nu_sum = (np.zeros(n), np.zeros(n))
    return _boson_events(
        [mu_m, mu_p], charges, nu_sum, system, particles, mass_weights, first_slot=1
    )


def _at_least_one(rng: np.random.Generator, n: int, p: np.ndarray) -> np.ndarray:
    """``[n, len(p)]`` booleans, slot j true with probability p[j], conditioned on >= 1 true."""
    k = len(p)
    patterns = np.array([[(m >> j) & 1 for j in range(k)] for m in range(1, 2**k)], dtype=bool)
    prob = np.prod(np.where(patterns, p, 1 - p), axis=1)
    choice = rng.choice(len(patterns), size=n, p=prob / prob.sum())
    return patterns[choice]


def ztautau(rng: np.random.Generator, n: int, **_) -> GenEvents:
    """Z -> tau tau with at least one tau -> mu nu nu; other taus decay invisibly+hadronically
    (their visible part joins the hadronic recoil)."""
    z, y, s, mass_weights = _z_boson(rng, n)
    tau_m, tau_p = _z_decay(rng, z, TAU_MASS)
    muonic = _at_least_one(rng, n, np.array([BR_TAU_MU, BR_TAU_MU]))
    mus, nu_x, nu_y = [], np.zeros(n), np.zeros(n)
    for j, tau in enumerate((tau_m, tau_p)):
        mu, nus = tau_to_muon(rng, tau)
        # a hadronic tau: the neutrino takes a fraction (1 - x) of the tau, x ~ U(0.3, 1)
        x = rng.uniform(0.3, 1.0, n)
        inv_x = np.where(muonic[:, j], nus[1], (1 - x) * tau[1])
        inv_y = np.where(muonic[:, j], nus[2], (1 - x) * tau[2])
        nu_x += inv_x
        nu_y += inv_y
        mus.append(mu)
    ok = np.ones(n, bool)
    particles = [
        (z, 23, 62, LAST_COPY, -1, ok),
        (tau_m, 15, 2, PROMPT | LAST_COPY, 0, ok),
        (tau_p, -15, 2, PROMPT | LAST_COPY, 0, ok),
        (mus[0], 13, 1, DIRECT_PROMPT_TAU_DECAY | LAST_COPY, 1, muonic[:, 0]),
        (mus[1], -13, 1, DIRECT_PROMPT_TAU_DECAY | LAST_COPY, 2, muonic[:, 1]),
    ]
    charges, system = np.tile(np.array([-1, 1]), (n, 1)), _system(z, y, s, np.zeros(n, int))
    nu_sum = (nu_x, nu_y)
    return _boson_events(
        mus,
        charges,
        nu_sum,
        system,
        particles,
        mass_weights,
        first_slot=3,
        valid=muonic,
        flight=0.003,
    )


def _w_to_muon(rng, w: FourVector, via_tau: np.ndarray):
    """Isotropic W -> l nu (l = mu, or tau -> mu where ``via_tau``); returns (mu, nu sum)."""
    n = len(w[0])
    c = 2.0 * rng.random(n) - 1.0
    lep, nu = two_body_decay(w, c, rng.uniform(-np.pi, np.pi, n), MUON_MASS, 0.0)
    mu_tau, nus = tau_to_muon(rng, lep)
    mu = tuple(np.where(via_tau, a, b) for a, b in zip(mu_tau, lep, strict=True))
    return mu, (nu[1] + np.where(via_tau, nus[1], 0.0), nu[2] + np.where(via_tau, nus[2], 0.0))


def _two_bosons(
    rng: np.random.Generator,
    n: int,
    *,
    pt_scale: float,
    y_sigma: float,
    z_fraction: float,
    recoil_sigma: float,
    iso_scale: float,
) -> GenEvents:
    """Two heavy bosons (tt -> WbWb, WW, WZ) of which at least one gives a muon, directly or
    via a tau. Boson 0 is a W; boson 1 a W of the opposite charge or, with ``z_fraction``, a
    Z (-> mu mu: two muons). Non-muonic W decays give a neutrino in 30% of the cases, a
    non-muonic Z decays to neutrinos in 20%. Muon slots: [W0, boson 1 (mu-), Z (mu+)]."""
    is_z = rng.random(n) < z_fraction
    q0 = np.where(rng.random(n) < 0.5, 1, -1)
    bosons = []
    for j in range(2):
        m = np.where(
            is_z & (j == 1),
            np.sqrt(breit_wigner_s(rng, n, MZ_REF, GAMMA_Z)),
            np.sqrt(breit_wigner_s(rng, n, MW_REF, GAMMA_W)),
        )
        pt = rng.gamma(2.0, pt_scale, n)
        y = sample_rapidity(rng, n, y_sigma, 3.0)
        bosons.append(four_vector(pt, y, rng.uniform(-np.pi, np.pi, n), m, rapidity=True))
    w0, b1 = bosons
    p_w = BR_W_MU + BR_W_TAU * BR_TAU_MU
    muonic = np.empty((n, 2), bool)
    for z_flag in (False, True):
        sel = is_z == z_flag
        muonic[sel] = _at_least_one(rng, int(sel.sum()), np.array([p_w, 0.0337 if z_flag else p_w]))
    via_tau = rng.random((n, 2)) < (BR_W_TAU * BR_TAU_MU / p_w)
    mu0, nu0 = _w_to_muon(rng, w0, via_tau[:, 0])
    mu1w, nu1 = _w_to_muon(rng, b1, via_tau[:, 1] & ~is_z)
    c = 2.0 * rng.random(n) - 1.0
    z_m, z_p = two_body_decay(b1, c, rng.uniform(-np.pi, np.pi, n), MUON_MASS, MUON_MASS)
    mu1 = tuple(np.where(is_z, a, b) for a, b in zip(z_m, mu1w, strict=True))
    q1 = np.where(is_z, -1, -q0)
    # neutrinos: muonic W decays always, other leptonic W decays 30%, Z -> nu nu 20%
    lept = rng.random((n, 2)) < 0.3
    inv0 = muonic[:, 0] | lept[:, 0]
    inv1 = np.where(is_z, False, muonic[:, 1] | lept[:, 1])
    nunu = is_z & ~muonic[:, 1] & lept[:, 1] & (rng.random(n) < 0.67)
    nu_x = np.where(inv0, nu0[0], 0.0) + np.where(inv1, nu1[0], 0.0) + np.where(nunu, b1[1], 0.0)
    nu_y = np.where(inv0, nu0[1], 0.0) + np.where(inv1, nu1[1], 0.0) + np.where(nunu, b1[2], 0.0)
    valid = np.stack([muonic[:, 0], muonic[:, 1], muonic[:, 1] & is_z], axis=1)
    tau0 = via_tau[:, 0]
    tau1 = via_tau[:, 1] & ~is_z
    ok = np.ones(n, bool)
    flags = [np.where(t, DIRECT_PROMPT_TAU_DECAY, PROMPT) | LAST_COPY for t in (tau0, tau1)]
    gen, gen_valid = gen_block(
        [
            (w0, 24 * q0, 62, LAST_COPY, -1, ok),
            (b1, np.where(is_z, 23, -24 * q0), 62, LAST_COPY, -1, ok),
            (mu0, -13 * q0, 1, flags[0], 0, valid[:, 0]),
            (mu1, -13 * q1, 1, flags[1], 1, valid[:, 1]),
            (z_p, -13, 1, PROMPT | LAST_COPY, 1, valid[:, 2]),
        ]
    )
    system = tuple(a + b for a, b in zip(w0, b1, strict=True))
    e, px, py, pz = system
    return GenEvents(
        n,
        p4_stack([mu0, mu1, z_p]),
        np.stack([q0, q1, np.ones(n, int)], axis=1),
        valid,
        np.ones((n, 3), bool),
        np.tile(np.array([2, 3, 4]), (n, 1)),
        rng.exponential(iso_scale, (n, 3)),
        np.full((n, 3), 0.003),
        nu_x,
        nu_y,
        np.hypot(px, py),
        0.5 * np.log((e + pz) / (e - pz)),
        np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0)),
        np.zeros(n, int),
        gen,
        gen_valid,
        recoil_sigma=recoil_sigma,
    )


def ttbar(rng: np.random.Generator, n: int, **_) -> GenEvents:
    """tt -> W b W b with at least one W -> mu (directly or via a tau): hard W's, jets (a wide
    recoil resolution and some activity around the muons), neutrinos -> broad MET."""
    return _two_bosons(
        rng, n, pt_scale=45.0, y_sigma=1.2, z_fraction=0.0, recoil_sigma=12.0, iso_scale=0.03
    )


def diboson(rng: np.random.Generator, n: int, **_) -> GenEvents:
    """WW and WZ (half each) with at least one muon; the rest decays hadronically or to
    neutrinos."""
    return _two_bosons(
        rng, n, pt_scale=20.0, y_sigma=1.6, z_fraction=0.5, recoil_sigma=5.0, iso_scale=0.01
    )


QCD_PT_MIN = 20.0
QCD_ISO_MEDIAN = 0.35
QCD_RECOIL_SIGMA = 10.0


def qcd(rng: np.random.Generator, n: int, **_) -> GenEvents:
    """Multijet with a non-prompt muon from a heavy-flavour decay: pT falling like pT^-4.5
    above ``QCD_PT_MIN`` = 20 GeV, inside a jet (relative isolation ~ lognormal around 0.35,
    ~10% below 0.15 after pileup), a displaced vertex, a soft neutrino close to the muon and a
    poorly measured recoil (jets): small MET, mostly low mT. The neutrino fraction is only
    weakly correlated with the isolation, so the extended ABCD method closes."""
    pt = QCD_PT_MIN * (1.0 - rng.random(n) * (1.0 - (QCD_PT_MIN / 200.0) ** 3.5)) ** (-1.0 / 3.5)
    eta = rng.uniform(-2.5, 2.5, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    charge = np.where(rng.random(n) < 0.5, 1, -1)
    mu = four_vector(pt, eta, phi, MUON_MASS)
    jet_iso = np.exp(rng.normal(np.log(QCD_ISO_MEDIAN), 1.0, n))
    frac = rng.exponential(0.2, n) * (1.0 + 0.15 * np.tanh(jet_iso - 0.5))
    nu_phi = phi + rng.normal(0.0, 0.4, n)
    nu_x, nu_y = frac * pt * np.cos(nu_phi), frac * pt * np.sin(nu_phi)
    ok = np.ones(n, bool)
    b = four_vector(pt * (1 + jet_iso + frac), eta, phi, 5.28)
    gen, gen_valid = gen_block(
        [
            (b, -511 * charge, 2, LAST_COPY, -1, ok),
            (mu, -13 * charge, 1, LAST_COPY, 0, ok),
        ]
    )
    return GenEvents(
        n,
        p4_stack([mu]),
        charge[:, None],
        np.ones((n, 1), bool),
        np.zeros((n, 1), bool),
        np.full((n, 1), 1),
        jet_iso[:, None],
        np.full((n, 1), 0.03),
        nu_x,
        nu_y,
        pt * (1.0 + jet_iso),
        eta,
        2.0 * pt * (1.0 + jet_iso),
        np.zeros(n, int),
        gen,
        gen_valid,
        recoil_sigma=QCD_RECOIL_SIGMA,
    )


_P_MU_W = BR_W_MU + BR_W_TAU * BR_TAU_MU

#: the datasets of a generated sample, in a fixed order (the order fixes the seeds). Cross
#: sections in pb: W -> mu nu (NNLO, 13 TeV), W -> tau nu and Z -> tau tau times the muonic tau
#: branching fraction (at least one muon), ttbar (833.9 pb) times P(at least one W -> mu,
#: directly or via a tau), dibosons with a muon, and QCD multijet with a non-prompt muon above
#: 15 GeV, tuned to a few % of the isolated high-mT region (see docs/samples.md).
PROCESSES: dict[str, ProcessSpec] = {
    spec.name: spec
    for spec in (
        ProcessSpec("wmunu", "Wmunu", 20508.9, 0.45, 3419.8, 0.04, wmunu, w_mass=True),
        ProcessSpec(
            "wtaunu", "Wtaunu", 20508.9 * BR_W_TAU / BR_W_MU * BR_TAU_MU, 0.06, 3419.8, 0.04,
            wtaunu, w_mass=True,
        ),
        ProcessSpec("zmumu", "Zmumu", 2001.9, 0.15, 1150.2, 0.03, zmumu),
        ProcessSpec(
            "ztautau", "Ztautau", 2001.9 * (1 - (1 - BR_TAU_MU) ** 2), 0.04, 1150.2, 0.03, ztautau
        ),
        ProcessSpec("ttbar", "Top", 833.9 * (1 - (1 - _P_MU_W) ** 2), 0.04, 74.1, 0.06, ttbar),
        ProcessSpec("diboson", "Diboson", 100.0, 0.02, 1.0, 0.02, diboson),
        ProcessSpec("qcd", "QCD", 60000.0, 0.24, 1.0, 0.0, qcd),
    )
}  # fmt: skip
