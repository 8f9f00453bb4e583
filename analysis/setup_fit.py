"""``wmass setup-fit``: post-process histograms into the fit input (and a pyhf workspace).

Reads one or several ``hists.h5`` (one channel each, e.g. the W analysis and the Z dilepton
analysis for a combined fit), builds the nonprompt background from data, the systematic
variations and the W-mass POI (:mod:`analysis.postprocess.setup`), writes ``fitinput.h5``
with provenance and prints a summary (processes, yields, nuisances per group) that is also
written beside the output as ``fitinput.log``.

    wmass setup-fit hists.h5 --out fitinput.h5
    wmass setup-fit hists.h5 --out asimov.h5 --pseudodata asimov
    wmass setup-fit hists.h5 --out shifted.h5 --pseudodata massShift50MeV
    wmass setup-fit w.h5 z.h5 --out combined.h5            # W + Z dilepton in one fit
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from analysis.postprocess.mass_templates import (
    MASS_TEMPLATE_DEGREE,
    SIGNAL_CORRELATION_DEGREE,
    SIGNAL_TEMPLATES,
)
from fit.provenance import atomic_write_text
from processors.errors import ConfigError

__all__ = ["add_arguments", "main", "setup_fit"]

DEFAULT_FITVAR = {"wmass": "pt-eta-charge", "wlike": "pt-eta-charge", "zdilepton": "mll-ptll-yll"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n")[0]
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "\n\n".join(__doc__.split("\n\n")[1:])
    parser.add_argument("hists", nargs="+", type=Path, help="hists.h5 file(s), one per channel")
    parser.add_argument("--out", type=Path, required=True, help="the fit input to write")
    parser.add_argument(
        "--analysis",
        nargs="+",
        default=None,
        help="analysis of each input (wmass, wlike, zdilepton); default: from the file",
    )
    parser.add_argument(
        "--fitvar",
        nargs="+",
        default=None,
        help="fit axes per input, '-'-joined (default pt-eta-charge for W, mll-ptll-yll for Z)",
    )
    parser.add_argument(
        "--pseudodata",
        default=None,
        metavar="{asimov,VARIATION}",
        help="fit pseudo-data instead of the data: the nominal prediction (asimov) or the "
        "prediction with one variation label applied (e.g. massShift50MeV)",
    )
    parser.add_argument(
        "--no-smoothing", action="store_true", help="nonprompt without the pT smoothing"
    )
    parser.add_argument(
        "--smoothing-order", type=int, default=2, help="polynomial order of the smoothing"
    )
    parser.add_argument(
        "--nonprompt-method",
        choices=["fakerate", "sidebands"],
        default="fakerate",
        help="fakerate: fake rates and the pT shape measured per charge summed over eta "
        "(default); sidebands: every sideband smoothed per eta x charge bin (biased upwards "
        "on small samples; docs/validation.md)",
    )
    parser.add_argument(
        "--signal-template",
        choices=SIGNAL_TEMPLATES,
        default="correlated",
        help="how the W signal's nominal is built (its variations keep their per-bin effect): "
        "correlated (default): from its pT x charge and eta x charge distributions, with the "
        "pT-eta correlation as a polynomial in pT per eta x charge bin; factorised: the two "
        "distributions only (m_W ~20 MeV high at 5M events); raw: bin by bin (biased low on "
        "small samples); docs/validation.md",
    )
    parser.add_argument(
        "--signal-correlation-degree",
        type=int,
        default=SIGNAL_CORRELATION_DEGREE,
        help="--signal-template correlated: Legendre degree in pT of the correlation",
    )
    parser.add_argument(
        "--mass-template-degree",
        type=int,
        default=MASS_TEMPLATE_DEGREE,
        help="Legendre degree in pT of the mass (POI) templates, measured summed over eta "
        "(docs/validation.md)",
    )
    parser.add_argument(
        "--raw-mass-templates",
        action="store_true",
        help="per-bin mass templates, with their simulation noise (biased towards the "
        "reference mass on small samples; for comparison only)",
    )
    parser.add_argument(
        "--storage",
        choices=["sparse", "dense"],
        default="sparse",
        help="how fitinput.h5 stores the log-kappa matrix (sparse: the non-zero entries; dense: "
        "the full [bins, processes, parameters] array, for small models)",
    )
    parser.add_argument("--pyhf-json", type=Path, default=None, help="also export a pyhf workspace")


def setup_fit(
    hists: list[Path],
    out: Path,
    *,
    analyses: list[str] | None = None,
    fitvars: list[str] | None = None,
    pseudodata: str | None = None,
    smoothing: bool = True,
    smoothing_order: int = 2,
    mass_template_degree: int | None = MASS_TEMPLATE_DEGREE,
    raw_mass_templates: bool = False,
    nonprompt_method: str = "fakerate",
    signal_template: str = "correlated",
    signal_correlation_degree: int = SIGNAL_CORRELATION_DEGREE,
    storage: str = "sparse",
    pyhf_json: Path | None = None,
    args: dict | None = None,
) -> tuple[object, str]:
    """Build and write the fit input; returns ``(FitInput, summary)``."""
    from analysis.io import read_histograms
    from analysis.postprocess.setup import build_fit_input, channel_setup, project
    from fit.provenance import provenance

    if analyses is not None and len(analyses) != len(hists):
        raise ConfigError("--analysis", f"give one per input ({len(hists)})")
    if fitvars is not None and len(fitvars) != len(hists):
        raise ConfigError("--fitvar", f"give one per input ({len(hists)})")
    files = [read_histograms(path) for path in hists]
    kinds = list(analyses) if analyses else [hf.analysis or "wmass" for hf in files]
    with_z = any(k != "wmass" for k in kinds)  # a Z channel in the fit: mZ is a POI too
    setups, names = [], set()
    for i, (hf, analysis) in enumerate(zip(files, kinds, strict=True)):
        name = analysis if analysis not in names else f"{analysis}{i}"
        names.add(name)
        setup = channel_setup(
            hf,
            analysis=analysis,
            name=name,
            with_z_mass=with_z,
            smoothing=smoothing,
            smoothing_order=smoothing_order,
            mass_template_degree=mass_template_degree,
            raw_mass_templates=raw_mass_templates,
            nonprompt_method=nonprompt_method,
            signal_template=signal_template,
            signal_correlation_degree=signal_correlation_degree,
        )
        fitvar = fitvars[i] if fitvars else DEFAULT_FITVAR[analysis]
        setups.append(project(setup, fitvar))
    fit_input, summary = build_fit_input(setups, pseudodata=pseudodata)
    meta = provenance(args=args or {}, inputs=[str(p) for p in hists])
    closure = {s.name: s.closure_projections for s in setups if s.closure_projections}
    if closure:  # the nonprompt closure on the QCD simulation, for the report
        meta["nonprompt_closure"] = closure
    fit_input.write(out, storage=storage, meta=meta)
    atomic_write_text(Path(out).with_suffix(".log"), summary)
    if pyhf_json is not None:
        _export_pyhf(fit_input, pyhf_json, meta)
    return fit_input, summary


def _export_pyhf(fit_input: object, path: Path, meta: dict) -> None:
    """The pyhf workspace (``fit.pyhf.write_workspace``), one pyhf channel per charge x eta
    slice where the channel has those axes (per-slice nuisances then stay in their slice)."""
    try:
        from fit.pyhf import write_workspace
    except ImportError as err:
        raise ConfigError("--pyhf-json", f"fit.pyhf has no workspace exporter: {err}") from None
    names = {ax.get("name") for ch in fit_input.channels for ax in ch.axes}
    split = tuple(a for a in ("charge", "eta") if a in names)
    write_workspace(fit_input, path, meta=meta, split=split)


#: the options of ``wmass setup-fit`` passed to :func:`setup_fit` as they are
_OPTIONS = (
    "pseudodata",
    "smoothing_order",
    "mass_template_degree",
    "raw_mass_templates",
    "nonprompt_method",
    "signal_template",
    "signal_correlation_degree",
    "storage",
    "pyhf_json",
)


def main(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    fit_input, summary = setup_fit(
        args.hists,
        args.out,
        analyses=args.analysis,
        fitvars=args.fitvar,
        smoothing=not args.no_smoothing,
        **{name: getattr(args, name) for name in _OPTIONS},
        args={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    )
    sys.stdout.write(summary)
    print(
        f"wrote {args.out} ({fit_input.nbins} bins, {fit_input.nprocs} processes, "
        f"{fit_input.nparams} parameters) and {Path(args.out).with_suffix('.log')} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    if args.pyhf_json:
        print(f"wrote {args.pyhf_json}")
    return 0
