"""Nonprompt estimate for all systematic variations at once vs one variation at a time.

    python benchmarks/postprocess.py --variations 700

The W histogram binning (30 pT x 48 eta x 2 charge x 2 iso x 3 mT), Poisson data, a prompt
prediction with ``--variations`` random shape variations; times the extended ABCD plus the pT
smoothing of all variations vectorised (one pass, as ``wmass setup-fit`` does) and in a
Python loop over variations (the same functions called once per variation, which repeats
the nominal fit each time, as a per-variation workflow does), checks that they
agree, and prints a table with the ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
sys.path.insert(0, str(_here.parent))

from analysis.postprocess import nonprompt_estimate, smooth_nonprompt  # noqa: E402


def model(n_var: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pt = np.arange(26.5, 56.0, 1.0)
    shape = (30, 48, 2, 2, 3)
    qcd = 50 * np.exp(-0.08 * (pt - 26))[:, None, None, None, None] * np.ones(shape)
    qcd[..., 1, :] *= 0.15 * np.exp(0.3 * np.arange(3))
    prompt = np.zeros(shape)
    prompt[..., 1, 2] = 200 * np.exp(-0.5 * ((pt - 40) / 5) ** 2)[:, None, None]
    prompt[..., 1, :2] = 0.1 * prompt[..., 1, 2:3]
    data = rng.poisson(qcd + prompt).astype(float)
    tilt = (
        1
        + 0.01
        * rng.standard_normal((1, 1, 1, 1, 1, n_var))
        * ((pt - 41) / 15)[:, None, None, None, None, None]
    )
    return pt, data, prompt, prompt[..., None] * tilt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variations", type=int, default=700)
    args = parser.parse_args()
    pt, data, prompt, varied = model(args.variations)
    nominal = nonprompt_estimate(data, prompt)

    start = time.perf_counter()
    together = smooth_nonprompt(nominal, pt, varied=nonprompt_estimate(data, varied), order=2)
    t_vec = time.perf_counter() - start

    start = time.perf_counter()
    loop = np.empty_like(together.variations)
    for v in range(args.variations):
        one = smooth_nonprompt(
            nominal, pt, varied=nonprompt_estimate(data, varied[..., v : v + 1]), order=2
        )
        loop[..., v] = one.variations[..., 0]
    t_loop = time.perf_counter() - start
    diff = np.max(np.abs(loop - together.variations) / np.maximum(np.abs(loop), 1e-300))

    print(f"extended ABCD + pT smoothing, {args.variations} variations, 17,280 bins each")
    print(f"{'method':<34}{'time [s]':>10}{'ratio':>8}")
    print(f"{'vectorised over variations':<34}{t_vec:>10.2f}{1.0:>8.1f}")
    print(f"{'loop over variations':<34}{t_loop:>10.2f}{t_loop / t_vec:>8.1f}")
    print(f"max relative difference: {diff:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
