"""Profile-likelihood fit of a fitinput.h5 (or a pyhf workspace JSON): POIs, pulls, impacts, GOF.

    wmass fit fitinput.h5 --out fitresult.h5 --impacts --global-impacts
    wmass fit fitinput.h5 --out asimov.h5 -t -1          # Asimov (expected) fit
    wmass fit fitinput.h5 --out toys.h5 -t 200 --seed 1   # 200 seeded toys
    wmass fit ws.json --out fitresult.h5                  # a pyhf workspace (fit.pyhf)

``-t`` follows combine: -1 Asimov, 0 (default) the observed data, N > 0 toys. An error prints
one line naming the input and returns its kind's ``exit_code`` (:mod:`fit.errors`): 6 for an
unusable input, 7 for a fit that did not converge, 8 for a result that cannot be written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .errors import FitError, FitInputError, OutputError

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``wmass fit``."""
    from .fitter import MINIMIZERS

    parser.add_argument("input", help="fitinput.h5, or a pyhf workspace .json")
    parser.add_argument("--out", "-o", default="fitresult.h5", help="the fitresult.h5 to write")
    parser.add_argument(
        "-t",
        "--toys",
        type=int,
        default=0,
        help="-1: Asimov data, 0: observed data, N > 0: N seeded toys",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the toys")
    parser.add_argument(
        "--impacts", action="store_true", help="traditional impacts per nuisance and group"
    )
    parser.add_argument(
        "--global-impacts",
        action="store_true",
        help="global impacts: data stat, each group, MC stat",
    )
    parser.add_argument(
        "--scan", action="append", default=[], metavar="POI", help="likelihood scan of POI"
    )
    parser.add_argument(
        "--scan-points", type=int, default=21, help="points of each scan (+-3 sigma)"
    )
    parser.add_argument("--minimizer", choices=MINIMIZERS, default="trust", help="minimiser")
    parser.add_argument(
        "--backend",
        choices=("sparse", "dense"),
        default="sparse",
        help="structured sparse likelihood, or the dense JAX reference",
    )
    parser.add_argument(
        "--no-mc-stat", action="store_true", help="ignore sumw2 (no Barlow-Beeston-lite)"
    )


def _check_json(path: Path) -> None:
    """``path`` is UTF-8 JSON, else :class:`FitInputError` naming it (before the workspace
    reader sees it: a downloaded file can be anything)."""
    import json

    try:
        json.loads(path.read_bytes().decode("utf-8"))
    except OSError as err:
        raise FitInputError(
            f"cannot read the file ({err.strerror or err})", where=str(path)
        ) from None
    except UnicodeDecodeError as err:
        raise FitInputError(
            f"not UTF-8 text ({err.reason} at byte {err.start}): not a pyhf workspace",
            where=str(path),
        ) from None
    except json.JSONDecodeError as err:
        raise FitInputError(
            f"not valid JSON ({err}): not a pyhf workspace", where=str(path)
        ) from None
    except RecursionError:
        raise FitInputError("not valid JSON (nested too deeply)", where=str(path)) from None


def _fit_workspace(args: argparse.Namespace, options: dict):
    try:
        from .pyhf import fit_workspace
    except ImportError as err:
        raise FitInputError(
            f"pyhf workspaces need fit.pyhf.fit_workspace ({err})", where=args.input
        ) from None
    return fit_workspace(args.input, meta={}, **options)  # main() sets the provenance


def main(args: argparse.Namespace) -> int:
    """Run the fit, write the result, print a short summary."""
    from .fitter import fit
    from .provenance import provenance
    from .writer import FitInput

    t0 = time.perf_counter()
    path = Path(args.input)
    options = dict(
        toys=args.toys,
        seed=args.seed,
        impacts=args.impacts,
        global_impacts=args.global_impacts,
        minimizer=args.minimizer,
        scan=tuple(args.scan),
        scan_points=args.scan_points,
    )
    meta = provenance(args=vars(args), inputs=[str(path)])
    try:
        if not path.exists():
            raise FitInputError("no such file", where=str(path))
        if path.suffix.lower() == ".json":
            _check_json(path)
            result = _fit_workspace(args, options)
        else:
            fi = FitInput.read(path)
            result = fit(
                fi,
                backend=args.backend,
                mc_stat=not args.no_mc_stat,
                meta=meta,
                **options,
            )
    except FitInputError as err:
        # the input file is the one thing every input error is about: name it once
        message = str(err) if str(path) in str(err) else f"{path}: {err}"
        print(f"wmass fit: error: {message}", file=sys.stderr)
        return err.exit_code
    except FitError as err:
        print(f"wmass fit: error: {path}: {err}", file=sys.stderr)
        return err.exit_code
    result.meta = meta
    try:
        result.write(args.out, meta)
    except OSError as err:  # disk full, no permission: the previous file is left as it was
        out_err = OutputError(args.out, err.strerror or str(err))
        print(f"wmass fit: error: {out_err}", file=sys.stderr)
        return out_err.exit_code
    print(result.summary())
    if result.toys:
        import numpy as np

        ok = np.array([s == "converged" for s in result.toys["status"]])
        print(f"toys: {ok.sum()} / {ok.size} converged")
        for name in result.pois:
            vals = result.toys[f"poi_{name}"][ok]
            if len(vals):
                print(
                    f"  {name}: mean {vals[:, 0].mean():.6g}, spread {vals[:, 0].std(ddof=1) if len(vals) > 1 else 0:.4g}"
                )
    print(f"wrote {args.out} in {time.perf_counter() - t0:.2f} s")
    return 0
