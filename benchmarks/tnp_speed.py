"""Tag-and-probe fit speed: all bins in one vectorised JAX Newton vs one iminuit fit per bin.

The problems are those of ``wmass calibrate`` on a generated sample: the pass/fail mass
histograms of every (eta, pT) probe bin of the ID+IP and trigger efficiencies, in data and in
the Z -> mu mu MC (the MC with background and smearing fixed, see
``analysis.calibrate.peakfit``). Two ways to fit them, the same likelihood:

- ``vectorised``: :func:`analysis.calibrate.fit_efficiencies`, one compiled, ``jax.vmap``-ed
  damped Newton loop over all problems (analytic gradient and Hessian, float64, chunks of
  problems); timed on the first call with JAX's persistent compilation cache empty (*cold*:
  XLA compilation, and the executables written to the cache), on a first call with the
  in-memory caches cleared but the persistent cache filled (*warm*: what a new ``wmass
  calibrate`` process pays; ``jax.clear_caches()`` emulates the new process), and on later
  calls (compiled, the best of ``--repeat``). The cache directory is ``--cache-dir`` (default:
  a new temporary directory, so that *cold* is cold; :mod:`analysis.calibrate.jaxcache`);
- ``iminuit``: a Python loop with one ``Minuit`` fit per problem (MIGRAD then HESSE) of the same
  NLL written in numpy/scipy, started from the same values, numerical gradient (the usual
  way), ``errordef = 0.5``; like the vectorised fit, from the same starting points
  (``starting_points``: ``STARTS``), keeping the lowest NLL.

Agreement: per problem converged in both, ``|eff_vec - eff_minuit| / sigma_minuit`` (required
< 0.1) and the ratio of the errors. Where the two differ by more than 0.02 sigma, iminuit
fits again (strategy 2, tolerance 1e-3) from its own minimum and from the vectorised one, and
the comparison is made at the lower NLL of the two: a default MIGRAD can stop in a local
minimum (two of 288 problems on 10M events), and agreeing with that would not be the point. Wall and CPU seconds are both shown: on the shared
machine the wall time is inflated by the load, the CPU time much less.

    python benchmarks/tnp_speed.py                  # a Z calibration sample, 300k MC + ~300k data
    python benchmarks/tnp_speed.py --events 5e6     # 5M Z MC + ~5M Z data = 10M Z events
    python benchmarks/tnp_speed.py --sample DIR     # an existing `wmass generate` output
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from analysis.calibrate.events import read_dimuons  # noqa: E402
from analysis.calibrate.peakfit import (  # noqa: E402
    FLOOR,
    M_REF,
    N_PARAMS,
    PRIORS,
    REACH,
    SIGMA_MIN,
    _start,
    fit_efficiencies,
    smearing_kernel,
    starting_points,
)
from analysis.calibrate.tnp import (  # noqa: E402
    DEFAULT_BINNING,
    KINDS,
    MassGrid,
    histogram_probes,
    select_probes,
)


def _clock() -> tuple[float, float]:
    t = os.times()
    return time.perf_counter(), t.user + t.system


def numpy_nll(grid: MassGrid):
    """The NLL of :func:`analysis.calibrate.peakfit.tnp_nll` in numpy (for iminuit): the same
    kernel, truncated at ``REACH`` bins."""
    from scipy.special import ndtr

    n_fit, n_tpl = len(grid.edges) - 1, len(grid.template_edges) - 1
    off = round((grid.lo - grid.tlo) / grid.width)
    first = max(off - n_tpl + 1, -REACH)
    last = min(off + n_fit - 1, REACH)
    lattice = np.arange(first - 1, last + 2) * grid.width
    centres = 0.5 * (grid.edges[1:] + grid.edges[:-1]) - M_REF
    lam0, lam_w = PRIORS["lambda"]

    def g(z):
        return z * ndtr(z) + np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)

    def expo(lam):
        e = np.exp(-lam * centres)
        return e / e.sum()

    def poisson(mu, n):
        if np.any(mu < 0) or np.any((mu <= 0) & (n > 0)):
            return np.inf
        pos = mu > 0
        return float(np.sum(mu[pos] - n[pos] * np.log(mu[pos])))

    def make(smear, n_pass, n_fail):
        def nll(theta):
            n, eff, b_pass, b_fail, l_pass, l_fail, delta, s = theta
            sigma = np.sqrt(SIGMA_MIN**2 + s**2)
            gz = g((lattice - delta) / sigma)
            f = sigma / grid.width * (gz[1:] - gz[:-1])
            sig = smear @ (f[1:] - f[:-1])
            sig = sig / sig.sum()
            mu_p = n * eff * sig + b_pass**2 * expo(l_pass)
            mu_f = n * (1 - eff) * sig + b_fail**2 * expo(l_fail)
            prior = 0.5 * (((l_pass - lam0) / lam_w) ** 2 + ((l_fail - lam0) / lam_w) ** 2)
            prior += 0.5 * (delta / PRIORS["delta"][1]) ** 2 + 0.5 * (s / PRIORS["s"][1]) ** 2
            return poisson(mu_p, n_pass) + poisson(mu_f, n_fail) + prior

        return nll

    return make


def problems(hists):
    """Every fit problem of ``fit_efficiencies`` in its order: (smear matrix, pass, fail, free,
    start), MC on effective entries."""
    grid = hists[0].grid
    _, matrix = smearing_kernel(grid, REACH)
    out = []
    for h in hists:
        n = int(np.prod(h.shape))
        tpl = np.clip(h.template.sum(axis=2), 0.0, None).reshape(n, -1)
        tpl[tpl.sum(-1) <= 0] = 1.0
        tpl = tpl / tpl.sum(-1, keepdims=True)
        tpl = (1.0 - FLOOR) * tpl + FLOOR / tpl.shape[-1]
        off = round((grid.lo - grid.tlo) / grid.width)
        signal = tpl[:, off : off + h.data.shape[-1]]
        signal = signal / signal.sum(-1, keepdims=True)
        mc, w2 = h.mc.reshape(n, 2, -1), h.mc_sumw2.reshape(n, 2, -1)
        k = np.divide(mc.sum((1, 2)), w2.sum((1, 2)), out=np.zeros(n), where=w2.sum((1, 2)) > 0)
        for counts, bkg in ((h.data.reshape(n, 2, -1), True), (mc * k[:, None, None], False)):
            counts = np.clip(counts, 0, None)
            free = np.ones(N_PARAMS) if bkg else np.r_[1.0, 1.0, np.zeros(N_PARAMS - 2)]
            start = _start(counts[:, 1], counts[:, 0], signal, bkg)
            frees = np.broadcast_to(free, start.shape)
            for b in range(n):
                pts = starting_points(start[b : b + 1], frees[b : b + 1])
                points = [t[0] for _, t in pts if len(t)]
                out.append((matrix(tpl[b]), counts[b, 1], counts[b, 0], free, points))
    return out


def _minuit(nll, start, free, strategy: int = 1, tol: float = 0.1):
    """One MIGRAD + HESSE of ``nll`` from ``start`` with the parameters ``free == 0`` fixed."""
    from iminuit import Minuit

    m = Minuit(nll, start)
    m.errordef = Minuit.LIKELIHOOD
    m.strategy, m.tol = strategy, tol
    for j in np.flatnonzero(free == 0):
        m.fixed[int(j)] = True
    m.migrad()
    m.hesse()
    return m


def run_minuit(grid, probs, min_fail):
    """The newcomer's loop: default MIGRAD + HESSE from each starting point, lowest NLL kept.
    Returns efficiency, its error, converged, NLL and the parameters per problem."""
    make = numpy_nll(grid)
    nll = np.full(len(probs), np.nan)
    eff = np.full(len(probs), np.nan)
    err = np.full(len(probs), np.nan)
    ok = np.zeros(len(probs), bool)
    theta = np.full((len(probs), N_PARAMS), np.nan)
    for i, (smear, n_pass, n_fail, free, points) in enumerate(probs):
        if n_pass.sum() < min_fail or n_fail.sum() < min_fail:
            continue
        for start in points:
            m = _minuit(make(smear, n_pass, n_fail), start, free)
            good = m.valid and m.accurate
            if good and (not ok[i] or m.fval < nll[i]) or not ok[i] and not np.isfinite(eff[i]):
                eff[i], err[i], nll[i], ok[i] = m.values[1], m.errors[1], m.fval, good
                theta[i] = np.asarray(m.values)
    return eff, err, ok, nll, theta


def minuit_from(grid, probs, starts, which):
    """MIGRAD + HESSE again (strategy 2, 100x tighter tolerance) from each of ``starts``
    (per problem), for the problems ``which``: is the default MIGRAD's minimum the lowest?
    Returns efficiency, error, NLL per problem (NaN elsewhere)."""
    make = numpy_nll(grid)
    eff, err, nll = (np.full(len(probs), np.nan) for _ in range(3))
    for i in which:
        smear, n_pass, n_fail, free, _ = probs[i]
        m = _minuit(make(smear, n_pass, n_fail), starts[i], free, strategy=2, tol=1e-3)
        eff[i], err[i], nll[i] = m.values[1], m.errors[1], m.fval
    return eff, err, nll


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=Path, default=None, help="a `wmass generate` output")
    parser.add_argument(
        "--events",
        type=lambda x: int(float(x)),
        default=300_000,
        help="Z MC events of the generated calibration sample (as many in data)",
    )
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="timed calls of the compiled fit")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="JAX persistent compilation cache (default: a new temporary directory)",
    )
    args = parser.parse_args()
    cache = None
    if args.cache_dir is None:
        cache = tempfile.TemporaryDirectory(prefix="tnp_speed_jax_")
        args.cache_dir = Path(cache.name)
    os.environ["WMASS_JAX_CACHE"] = str(args.cache_dir)  # analysis.calibrate.jaxcache

    tmp = None
    if args.sample is None:
        from analysis.generate import generate_samples

        tmp = tempfile.TemporaryDirectory(prefix="tnp_speed_")
        args.sample = generate_samples(
            tmp.name, events=args.events, seed=args.seed, processes=["zmumu"], jobs=2
        ).parent
    from analysis.datasets import load_datasets

    ds = load_datasets(args.sample / "datasets.yaml")
    w0, c0 = _clock()
    data, mc = read_dimuons(ds["data"]), read_dimuons(ds["zmumu"])
    w1, c1 = _clock()
    n_events = sum(int(uproot_entries(f)) for d in (ds["data"], ds["zmumu"]) for f in d.files)
    w2, c2 = _clock()
    hists = [
        histogram_probes(k, select_probes(data, k), select_probes(mc, k), DEFAULT_BINNING[k])
        for k in KINDS
    ]
    w3, c3 = _clock()
    prep = [("read the pairs (uproot)", w1 - w0, c1 - c0), ("select + histogram", w3 - w2, c3 - c2)]
    rows = []
    w0, c0 = _clock()
    fits, res = fit_efficiencies(hists)
    w1, c1 = _clock()
    n_fit = len(res.converged)
    rows.append(("vectorised, 1st call, cache cold (compile)", n_fit, w1 - w0, c1 - c0))
    import jax

    jax.clear_caches()  # in-memory: the next call is a new process's, with the disk cache
    w0, c0 = _clock()
    fit_efficiencies(hists)
    w1, c1 = _clock()
    rows.append(("vectorised, 1st call, cache warm", n_fit, w1 - w0, c1 - c0))
    best = (np.inf, np.inf)
    for _ in range(args.repeat):
        w1, c1 = _clock()
        fits, res = fit_efficiencies(hists)
        w2, c2 = _clock()
        best = min(best, (c2 - c1, w2 - w1))
    rows.append(("vectorised, compiled", n_fit, best[1], best[0]))
    vec_eff = np.concatenate(
        [np.concatenate([f.eff_data.ravel(), f.eff_mc.ravel()]) for f in fits.values()]
    )
    vec_err = np.concatenate(
        [np.concatenate([f.err_data.ravel(), f.err_mc.ravel()]) for f in fits.values()]
    )
    vec_ok = np.concatenate(
        [np.concatenate([f.valid_data.ravel(), f.valid_mc.ravel()]) for f in fits.values()]
    )
    probs = problems(hists)
    w3, c3 = _clock()
    m_eff, m_err, m_ok, m_nll, m_theta = run_minuit(hists[0].grid, probs, 3.0)
    w4, c4 = _clock()
    rows.append(("iminuit loop (MIGRAD + HESSE)", int(np.isfinite(m_eff).sum()), w4 - w3, c4 - c3))

    vec_theta = np.concatenate(
        [
            np.concatenate([f.theta_data.reshape(-1, N_PARAMS), f.theta_mc.reshape(-1, N_PARAMS)])
            for f in fits.values()
        ]
    )
    make = numpy_nll(hists[0].grid)
    both = vec_ok & m_ok
    worst = np.flatnonzero(both)[np.argsort(-np.abs(vec_eff - m_eff)[both] / m_err[both])[:3]]
    for i in worst:
        smear, n_pass, n_fail, _, _ = probs[i]
        d_nll = make(smear, n_pass, n_fail)(vec_theta[i]) - m_nll[i]
        print(
            f"fit {i}: eff {vec_eff[i]:.4f} vs {m_eff[i]:.4f} (sigma {m_err[i]:.4f}), "
            f"NLL(vectorised) - NLL(iminuit) = {d_nll:+.2e}"
        )
    dev = np.abs(vec_eff - m_eff)[both] / m_err[both]
    ratio = vec_err[both] / m_err[both]
    print(
        f"sample {args.sample}: {n_events:,} events, {len(data):,} data and {len(mc):,} MC "
        "events with >= 2 muons"
    )
    print("| step | wall s | CPU s |\n|---|---|---|")
    for name, wall, cpu in prep:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |")
    minuit_cpu = rows[-1][3]
    print("\n| method | fits | wall s | CPU s | ms / fit (CPU) | iminuit / this (CPU) |")
    print("|---|---|---|---|---|---|")
    for name, n, wall, cpu in rows:
        print(
            f"| {name} | {n} | {wall:.2f} | {cpu:.2f} | {1e3 * cpu / max(n, 1):.2f} "
            f"| {minuit_cpu / cpu:.1f} |"
        )
    print(
        f"\nagreement on {both.sum()} fits converged in both: max |d eff|/sigma {dev.max():.3f} "
        f"(median {np.median(dev):.4f}); sigma_vec/sigma_minuit {ratio.min():.3f}-{ratio.max():.3f}"
    )
    print(f"converged: vectorised {vec_ok.sum()}, iminuit {m_ok.sum()}")
    # where the two differ by more than 0.02 sigma: which minimum is the lower one? iminuit
    # again from its own minimum, and from the vectorised fit's; the lower NLL is its answer
    which = np.flatnonzero(both)[dev > 0.02]
    if len(which):
        grid = hists[0].grid
        own = minuit_from(grid, probs, m_theta, which)
        other = minuit_from(grid, probs, vec_theta, which)
        best = [np.where(other[2] < own[2], b, a) for a, b in zip(own, other, strict=True)]
        # the scale: HESSE at the lower minimum, or at the first answer where HESSE fails there
        scale = np.where(np.isfinite(best[1]) & (best[1] > 0), best[1], m_err)
        dev_best = np.abs(vec_eff - best[0])[which] / scale[which]
        for k, i in enumerate(which):
            print(
                f"fit {i}: iminuit from its own minimum NLL {own[2][i] - m_nll[i]:+.3f}, from the "
                f"vectorised minimum {other[2][i] - m_nll[i]:+.3f} (vs its first answer); "
                f"at the lower: |d eff|/sigma {dev_best[k]:.3f}"
            )
        dev = dev.copy()
        dev[np.isin(np.flatnonzero(both), which)] = dev_best
        print(
            f"agreement at iminuit's lowest minimum: max |d eff|/sigma {dev.max():.3f} "
            f"(the default MIGRAD's answer was a local minimum in {np.sum(other[2] < own[2] - 1e-3)} "
            "of these)"
        )
    n_cached = len(list(args.cache_dir.iterdir()))
    print(f"persistent compilation cache {args.cache_dir}: {n_cached} entries")
    for t in (tmp, cache):
        if t is not None:
            t.cleanup()
    return 0 if dev.max() < 0.1 else 1


def uproot_entries(path: str) -> int:
    import uproot

    with uproot.open(path) as f:
        return f["Events"].num_entries


if __name__ == "__main__":
    sys.exit(main())
