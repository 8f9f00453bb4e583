"""Vectorised kinematics of the generator: Breit-Wigner masses, boson pT and rapidity spectra,
two-body decays with V-A angles, tau -> mu nu nu, and Lorentz boosts.

Four-vectors are tuples of numpy arrays ``(E, px, py, pz)`` in GeV. Every sampler takes a
``numpy.random.Generator`` so that the same seed gives the same arrays.

>>> rng = np.random.default_rng(1)
>>> m = np.sqrt(breit_wigner_s(rng, 5, 80.379, 2.085))
>>> bool(np.all((m > 50) & (m < 200)))
True
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

__all__ = [
    "FourVector",
    "MUON_MASS",
    "TAU_MASS",
    "boost",
    "breit_wigner_density",
    "breit_wigner_s",
    "cos_theta_one_plus_c2",
    "cos_theta_v_minus_a",
    "four_vector",
    "pt_eta_phi",
    "sample_boson_pt",
    "sample_rapidity",
    "tau_to_muon",
    "two_body_decay",
]

MUON_MASS = 0.1056583755
TAU_MASS = 1.77686
#: the Breit-Wigner window in the boson mass (GeV) of every sample
MASS_WINDOW = (50.0, 200.0)

FourVector = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _bw_limits(mass: float, width: float, window: tuple[float, float]) -> tuple[float, float]:
    mg = mass * width
    lo, hi = window
    return np.arctan((lo**2 - mass**2) / mg), np.arctan((hi**2 - mass**2) / mg)


def breit_wigner_s(
    rng: np.random.Generator,
    n: int,
    mass: float,
    width: float,
    window: tuple[float, float] = MASS_WINDOW,
) -> np.ndarray:
    """``n`` values of s = m^2 drawn exactly from the relativistic Breit-Wigner
    ``1 / ((s - M^2)^2 + M^2 Gamma^2)`` truncated to ``window`` in m (arctan inversion)."""
    a, b = _bw_limits(mass, width, window)
    return mass**2 + mass * width * np.tan(a + (b - a) * rng.random(n))


def breit_wigner_density(
    s: np.ndarray, mass: float, width: float, window: tuple[float, float] = MASS_WINDOW
) -> np.ndarray:
    """The density in s of :func:`breit_wigner_s`, normalised to 1 over ``window``.

    The mass weight from ``M`` to ``M + d`` is ``density(s, M + d) / density(s, M)``; both are
    normalised over the same window, so the weights average to 1 and the reweighted sample has
    the yield of a sample generated at ``M + d``.
    """
    a, b = _bw_limits(mass, width, window)
    mg = mass * width
    return mg / ((b - a) * ((s - mass**2) ** 2 + mg**2))


def sample_boson_pt(
    rng: np.random.Generator, n: int, p0: float, power: float, pt_max: float = 200.0
) -> np.ndarray:
    """Boson pT from ``dN/dpT ~ pT / (pT^2 + p0^2)^power`` below ``pt_max`` (inverse CDF).

    The spectrum peaks at ``p0 / sqrt(2 power - 1)`` and falls like ``pT^(1 - 2 power)``.
    """
    f_max = 1.0 - (1.0 + pt_max**2 / p0**2) ** (1.0 - power)
    f = rng.random(n) * f_max
    u = p0**2 * ((1.0 - f) ** (1.0 / (1.0 - power)) - 1.0)
    return np.sqrt(u)


def sample_rapidity(
    rng: np.random.Generator, n: int, sigma: np.ndarray | float, y_max: float
) -> np.ndarray:
    """Rapidity from a Gaussian of width ``sigma`` (scalar or per event) truncated at ``y_max``."""
    lo = ndtr(-y_max / np.asarray(sigma))
    return np.asarray(sigma) * ndtri(lo + (1.0 - 2.0 * lo) * rng.random(n))


def cos_theta_v_minus_a(rng: np.random.Generator, sign: np.ndarray) -> np.ndarray:
    """cos(theta) from ``(1 + sign cos theta)^2`` per event (``sign`` = +-1)."""
    c = 2.0 * np.cbrt(rng.random(len(sign))) - 1.0  # (1 + c)^2
    return np.where(sign > 0, c, -c)


def cos_theta_one_plus_c2(rng: np.random.Generator, n: int) -> np.ndarray:
    """cos(theta) from ``1 + cos^2 theta`` (exact: the cubic CDF solved with Cardano)."""
    q = 4.0 - 8.0 * rng.random(n)  # c^3 + 3 c + q = 0
    d = np.sqrt(q**2 / 4.0 + 1.0)
    return np.cbrt(-q / 2.0 + d) + np.cbrt(-q / 2.0 - d)


def four_vector(pt, eta_or_y, phi, mass, *, rapidity: bool = False) -> FourVector:
    """``(E, px, py, pz)`` from pT, pseudorapidity (or rapidity), phi and mass."""
    pt = np.asarray(pt, dtype=np.float64)
    mass = np.asarray(mass, dtype=np.float64)
    px, py = pt * np.cos(phi), pt * np.sin(phi)
    if rapidity:
        mt = np.sqrt(pt**2 + mass**2)
        return mt * np.cosh(eta_or_y), px, py, mt * np.sinh(eta_or_y)
    pz = pt * np.sinh(eta_or_y)
    return np.sqrt(pt**2 + pz**2 + mass**2), px, py, pz


def pt_eta_phi(p: FourVector) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pT, pseudorapidity and phi of a four-vector (eta is large but finite along the beam)."""
    _, px, py, pz = p
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.maximum(pt, 1e-9))
    return pt, eta, np.arctan2(py, px)


def boost(p: FourVector, frame: FourVector) -> FourVector:
    """Boost ``p``, given in the rest frame of ``frame``, to the frame where ``frame`` is."""
    e, px, py, pz = p
    fe, fx, fy, fz = frame
    m = np.sqrt(np.maximum(fe**2 - fx**2 - fy**2 - fz**2, 1e-12))
    bx, by, bz = fx / fe, fy / fe, fz / fe
    gamma = fe / m
    bp = bx * px + by * py + bz * pz
    b2 = bx**2 + by**2 + bz**2
    k = np.where(b2 > 0, (gamma - 1.0) * bp / np.where(b2 > 0, b2, 1.0), 0.0) + gamma * e
    return gamma * (e + bp), px + k * bx, py + k * by, pz + k * bz


def two_body_decay(
    parent: FourVector,
    cos_theta: np.ndarray,
    phi: np.ndarray,
    m1: float = 0.0,
    m2: float = 0.0,
) -> tuple[FourVector, FourVector]:
    """Lab four-vectors of the daughters of ``parent``; daughter 1 has polar angle
    ``cos_theta`` (to the beam axis) and azimuth ``phi`` in the parent's rest frame."""
    e, px, py, pz = parent
    m = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))
    p_star = np.sqrt(np.maximum((m**2 - (m1 + m2) ** 2) * (m**2 - (m1 - m2) ** 2), 0.0)) / (2 * m)
    sin_theta = np.sqrt(np.maximum(1.0 - cos_theta**2, 0.0))
    qx, qy, qz = (
        p_star * sin_theta * np.cos(phi),
        p_star * sin_theta * np.sin(phi),
        p_star * cos_theta,
    )
    d1 = boost((np.sqrt(p_star**2 + m1**2), qx, qy, qz), parent)
    d2 = boost((np.sqrt(p_star**2 + m2**2), -qx, -qy, -qz), parent)
    return d1, d2


_MICHEL_X = np.linspace(0.0, 1.0, 2049)
_MICHEL_CDF = 2.0 * _MICHEL_X**3 - _MICHEL_X**4  # of x^2 (3 - 2 x), normalised


def tau_to_muon(rng: np.random.Generator, tau: FourVector) -> tuple[FourVector, FourVector]:
    """tau -> mu nu nu: the muon energy from the (unpolarised) Michel spectrum and an isotropic
    direction in the tau rest frame; returns the lab muon and the sum of the two neutrinos."""
    n = len(tau[0])
    x = np.interp(rng.random(n), _MICHEL_CDF, _MICHEL_X)
    e_star = np.maximum(x * TAU_MASS / 2.0, MUON_MASS)
    p_star = np.sqrt(e_star**2 - MUON_MASS**2)
    c = 2.0 * rng.random(n) - 1.0
    s = np.sqrt(1.0 - c**2)
    phi = rng.uniform(-np.pi, np.pi, n)
    mu = boost((e_star, p_star * s * np.cos(phi), p_star * s * np.sin(phi), p_star * c), tau)
    nus = tuple(t - m for t, m in zip(tau, mu, strict=True))
    return mu, nus
