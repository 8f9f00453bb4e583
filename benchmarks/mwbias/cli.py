"""The command-line options of ``benchmarks/mw_bias.py``, checked before anything runs."""

from __future__ import annotations

import argparse
import contextlib
import io
import shlex
from collections.abc import Sequence
from pathlib import Path

from benchmarks.mwbias.common import MW_REF_GEV, VARIANTS
from benchmarks.mwbias.worker import setup_fit_args

__all__ = ["parse_args"]

_HERE = Path(__file__).resolve().parents[1]


def _join_setup_args(argv: Sequence[str]) -> list[str]:
    """``--setup-args --raw-mass-templates`` -> ``--setup-args=--raw-mass-templates`` (argparse
    would otherwise read the value as an option of ours)."""
    out, it = [], iter(argv)
    for a in it:
        nxt = next(it, None) if a in ("--setup-args", "--setup-variant") else None
        out.append(a if nxt is None else f"{a}={nxt}")
    return out


def parse_args(argv: Sequence[str], doc: str) -> argparse.Namespace:
    """The options of ``benchmarks/mw_bias.py`` (``doc``: its docstring, the help text)."""
    ap = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog="\n\n".join(doc.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--masses",
        default=f"{MW_REF_GEV - 0.1:.3f},{MW_REF_GEV:.3f},{MW_REF_GEV + 0.1:.3f}",
        help="comma-separated true W masses of the data in GeV, within +-100 MeV of the "
        f"reference {MW_REF_GEV} (the MC mass weights span +-100 MeV) (default: %(default)s)",
    )
    ap.add_argument(
        "--events",
        type=lambda s: int(float(s)),
        default=200_000,
        help="MC events per pseudo-experiment (wmass generate --events; the data has 1/4 of "
        "the signal MC's W events) (default: %(default)s)",
    )
    ap.add_argument(
        "--n",
        type=int,
        default=6,
        help="full-chain pseudo-experiments per true mass; the issue's targets are >= 200 "
        "at 200k events and >= 50 at 1M events (default: %(default)s)",
    )
    ap.add_argument(
        "--fit-only",
        type=int,
        default=40,
        metavar="N",
        help="fit-only toys (0: skip); the issue's target is 1000 toys with |mean pull| <= "
        "0.05 (default: %(default)s)",
    )
    ap.add_argument(
        "--fit-only-shift",
        type=float,
        default=50.0,
        metavar="MEV",
        help="mass shift of the fit-only toys from the reference, MeV (default: %(default)s)",
    )
    ap.add_argument(
        "--toy-globals",
        choices=("fixed", "random", "theta0", "beta0"),
        default="fixed",
        help="fit-only toys: keep the global observables nominal (only the data fluctuate), "
        "randomise them all (as wmass fit -t N), or only the Gaussian constraints' (theta0) "
        "or only BB-lite's (beta0) (default: %(default)s)",
    )
    ap.add_argument(
        "--seed",
        type=int,
        default=1000,
        help="base seed: PE i at mass j uses seed + i * n_masses + j (--paired: seed + i), the "
        "fit-only sample "
        "seed - 1 (default: %(default)s)",
    )
    ap.add_argument(
        "--tables",
        nargs="+",
        type=Path,
        metavar="CSV",
        help="run nothing: print the tables of earlier runs' CSV files, joined",
    )
    ap.add_argument(
        "--paired",
        action="store_true",
        help="PE i uses the seed --seed + i at every mass: the same MC and the same data events "
        "at shifted W masses; adds a per-seed slope that measures the linearity precisely",
    )
    ap.add_argument(
        "--calibrate",
        action="store_true",
        help="measured corrections: per seed, a Z -> mu mu calibration sample (the seed's "
        "detector truth, its own events: wmass generate --calibration-sample) and wmass "
        "calibrate on it; the PEs of the seed fill their histograms with that calib.json "
        "(histmaker --corrections), so the calibration's statistics enter sigma(m_W)",
    )
    ap.add_argument(
        "--calib-events",
        type=lambda s: int(float(s)),
        default=1_000_000,
        help="--calibrate: Z MC events of each calibration sample (as many Z events in data) "
        "(default: %(default)s)",
    )
    ap.add_argument(
        "--variants",
        default=",".join(v for v, _ in VARIANTS),
        help="comma-separated fit variants of each PE (default: %(default)s)",
    )
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default: %(default)s)")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS/OpenMP threads per worker (the workers already fill the cores) "
        "(default: %(default)s)",
    )
    ap.add_argument(
        "--setup-args",
        default="",
        help='extra arguments of wmass setup-fit, e.g. --setup-args="--raw-mass-templates" '
        "(applied to the PEs and the fit-only sample)",
    )
    ap.add_argument(
        "--setup-variant",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="also set up and fit every PE with these extra setup-fit arguments, from the same "
        "hists.h5 (repeatable); rows get the variant 'bb-lite/NAME' and the tables the PE-by-PE "
        "shift from the plain setup, free of the samples' fluctuations, e.g. "
        '--setup-variant "factorised=--signal-template factorised"',
    )
    ap.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the pseudo-experiments' files go (default: a temporary directory)",
    )
    ap.add_argument(
        "--keep", action="store_true", help="keep each PE's files (default: deleted after it)"
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=_HERE / "results" / "mw_bias",
        help="directory of the CSV and JSON outputs (default: benchmarks/results/mw_bias/)",
    )
    ap.add_argument(
        "--name",
        default=None,
        help="base name of the outputs (default: mw_bias_<events>ev_<UTC time>)",
    )
    args = ap.parse_args(_join_setup_args(argv))
    try:
        args.mass_list = [float(m) for m in args.masses.split(",") if m.strip()]
    except ValueError:
        ap.error(f"--masses {args.masses!r}: give comma-separated numbers in GeV")
    if not args.mass_list:
        ap.error("--masses: give at least one mass")
    far = [m for m in args.mass_list if abs(m - MW_REF_GEV) > 0.1 + 1e-9]
    if far:
        ap.error(f"--masses {far}: outside {MW_REF_GEV} +- 0.100 GeV (the mass weights' range)")
    if args.n < 0 or args.fit_only < 0 or args.jobs < 1 or args.events < 1:
        ap.error("--n, --fit-only must be >= 0, --jobs and --events >= 1")
    args.variant_list = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(args.variant_list) - {v for v, _ in VARIANTS}
    if unknown or not args.variant_list:
        ap.error(f"--variants {args.variants!r}: choose from {[v for v, _ in VARIANTS]}")
    args.setup_list = shlex.split(args.setup_args)
    _check_setup(ap, "--setup-args", args.setup_args, args.setup_list)
    args.setup_variants = []
    for text in args.setup_variant:
        name, sep, extra = text.partition("=")
        name = name.strip()
        if not sep or not name or "/" in name or "," in name:
            ap.error(f"--setup-variant {text!r}: give NAME=ARGS (a name without '/' or ',')")
        if name in {n for n, _ in args.setup_variants}:
            ap.error(f"--setup-variant {text!r}: the name {name!r} is given twice")
        extra_list = shlex.split(extra)
        _check_setup(ap, "--setup-variant", text, [*args.setup_list, *extra_list])
        args.setup_variants.append((name, extra_list))
    return args


def _check_setup(ap: argparse.ArgumentParser, option: str, text: str, argv: list[str]) -> None:
    """Validate setup-fit arguments with setup-fit's own parser now, not in every worker."""
    try:
        with contextlib.redirect_stderr(io.StringIO()) as err:
            setup_fit_args(Path("hists.h5"), Path("fitinput.h5"), argv)
    except SystemExit:
        msg = err.getvalue().strip().splitlines()
        ap.error(f"{option} {text!r}: {msg[-1] if msg else 'invalid'}")
