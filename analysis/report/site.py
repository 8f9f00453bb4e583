"""``wmass report``: a static, offline HTML site of fit results that people can browse.

``wmass report fitresult.h5 [hists.h5 ...] --out site/`` adds one *run* to the site::

    site/index.html            every run written into this --out, newest first (runs.json)
    site/runs.json             the index, machine-readable
    site/plotly.min.js         plotly's bundle, served from the site itself (no CDN)
    site/<run>/index.html      POIs, goodness of fit, global impacts per group, likelihood
                               scans, pre- and post-fit distributions, yields, samples, logs
    site/<run>/impacts_<poi>.html   pulls, constraints and impacts of every nuisance
    site/<run>/plots/*.png|pdf|log  every plot with its .log (command, yields, provenance)

Pre- and post-fit distributions are drawn for each channel unrolled and projected on each of
its axes. Their uncertainty bands come from the covariance through the model's Jacobian
(``sqrt(diag(J C J^T))`` of the projected yields), so correlations are right in every
projection; this needs the fit input, found in the fit result's provenance or given with
``--fitinput``. Without it, the unrolled plots use the per-bin bands stored by the fit.

>>> from analysis.report import write_report
>>> page = write_report("fitresult.h5", ["hists.h5"], out="site")  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import fcntl
import json
import os
import re
import shlex
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analysis.report.errors import ReportError
from analysis.report.flags import flags_section, gof_section
from analysis.report.names import binning_of, display_name
from analysis.report.pages import index_page, run_page, samples_section
from analysis.report.plots import PLOTLY_JS, nuisance_page, write_plotly_js
from analysis.report.runplots import (
    Bands,
    closure_plots,
    fit_plots,
    hists_candidates,
    make_plots,
    mw_comparison,
    poi_slug,
    style_context,
    template_plots,
)
from fit.provenance import atomic_write_text, provenance
from processors.errors import WMassError

__all__ = ["ReportError", "add_arguments", "main", "run_name", "write_report"]

RUNS_JSON = "runs.json"

#: the bands of a run (kept under its old name: tests and notebooks import it from here)
_Bands = Bands
_poi_slug = poi_slug


# ----------------------------------------------------------------------------- inputs


def _load_result(path: Path):
    from fit.result import FitResult

    try:
        return FitResult.read(path)
    except WMassError as err:
        raise ReportError(f"{path}: not a fit result: {err}") from None
    except OSError as err:  # h5py reading a truncated or corrupt dataset
        raise ReportError(f"{path}: not a fit result: {err}") from None


def _find_fitinput(result: Any, explicit: Path | None, fitresult: Path) -> Path | None:
    """The fit input of ``result``: ``explicit``, else an input named in its provenance."""
    if explicit is not None:
        if not explicit.is_file():
            raise ReportError(f"{explicit}: --fitinput does not exist")
        return explicit
    import h5py

    for name in result.meta.get("inputs", []) or []:
        for cand in (Path(name), fitresult.parent / Path(name).name):
            try:
                with h5py.File(cand, "r") as f:
                    if f.attrs.get("kind") == "fitinput":
                        return cand
            except (OSError, ValueError):
                continue
    return None


def _read_fitinput(path: Path):
    from fit.writer import FitInput

    try:
        return FitInput.read(path)
    except (WMassError, OSError) as err:  # FitInputError; h5py on a corrupt dataset
        raise ReportError(f"{path}: not a fit input: {err}") from None


def run_name(result: Any, fitresult: Path) -> str:
    """A stable, URL-safe name of a run: the fit's time and the file's stem.

    Reporting the same fit result again into the same site replaces its run, never doubles it.
    """
    stamp = str(result.meta.get("time", "")) or "unknown-time"
    stamp = stamp.replace("+00:00", "Z")
    raw = f"{stamp}-{fitresult.stem}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-")


@contextlib.contextmanager
def _site_lock(out: Path) -> Iterator[None]:
    """An exclusive lock on the site (``out/.lock``) while its index is read, changed and
    written: two reports into one site at once both land in ``runs.json``."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _update_index(out: Path, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    with _site_lock(out):
        return _update_index_locked(out, entry)


def _update_index_locked(out: Path, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    path = out / RUNS_JSON
    runs: list[dict[str, Any]] = []
    if path.exists():
        try:
            runs = json.loads(path.read_text())["runs"]
        except (ValueError, KeyError, TypeError) as err:
            raise ReportError(f"{path}: not a wmass site index: {err}") from None
    runs = [r for r in runs if r.get("name") != entry["name"]]
    runs.append(dict(entry))
    runs.sort(key=lambda r: (str(r.get("time", "")), r["name"]), reverse=True)
    atomic_write_text(path, json.dumps({"runs": runs}, indent=1))
    atomic_write_text(out / "index.html", index_page(runs))
    return runs


# ----------------------------------------------------------------------------- API


def write_report(
    fitresult: str | os.PathLike,
    hists: Sequence[str | os.PathLike] = (),
    *,
    out: str | os.PathLike = "site",
    fitinput: str | os.PathLike | None = None,
    name: str | None = None,
    formats: Sequence[str] = ("png", "pdf"),
    command: str | None = None,
    projections: Sequence[str] | None = None,
) -> Path:
    """Add the run of ``fitresult`` to the site in ``out``; return its page ``out/<run>/index.html``.

    ``projections``: which projections of each channel to draw besides the unrolled one, as
    axis names joined by ``-`` (``["pt", "eta-pt"]``); default: one per axis.
    """
    fitresult = Path(fitresult)
    out = Path(out)
    hists = [Path(h) for h in hists]
    for h in hists:
        if not h.is_file():
            raise ReportError(f"{h}: no such histograms file")
    if not fitresult.is_file():
        raise ReportError(f"{fitresult}: no such fit result")
    result = _load_result(fitresult)
    fi_path = _find_fitinput(result, Path(fitinput) if fitinput else None, fitresult)
    # a student's fit on a blinded course sample: the site shows the blinded m_W until the
    # course secret is set (analysis/course/outputs.py); the comparison with the published
    # measurements, which would place the fitted value, is left out while blinded
    from analysis.course.outputs import blind_result, blinding_for

    blinding = blinding_for(fitresult, *hists, *([fi_path] if fi_path else []))
    if blinding is not None:
        result = blind_result(result, blinding)
    bands = None
    if fi_path is not None:
        bands = _Bands(_read_fitinput(fi_path), result)
        note = (
            f"Bands: uncertainty of the total prediction from the covariance propagated through "
            f"the model of {fi_path.name} (pre-fit: unit prior widths; post-fit: the fit's "
            "covariance), exact in every projection."
        )
    else:
        note = (
            "Bands: per-bin uncertainties stored by the fit (unrolled plots only); give "
            "--fitinput for bands on the projections."
        )
    name = name or run_name(result, fitresult)
    run_dir = out / name
    plots_dir = run_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    write_plotly_js(out)
    inputs = [str(fitresult), *(str(h) for h in hists)] + ([str(fi_path)] if fi_path else [])
    meta = provenance(
        args={"fitresult": str(fitresult), "hists": [str(h) for h in hists], "out": str(out)},
        inputs=inputs,
        command=command,
    )
    samples_html, hist_metas = samples_section(hists)
    inputs_meta = {fitresult.name: result.meta, **hist_metas}
    if projections is not None:
        known = {str(a.get("name")) for y in result.yields.values() for a in y.get("axes") or []}
        for spec in projections:
            missing = [a for a in spec.split("-") if a and a not in known]
            if missing:
                raise ReportError(
                    f"--project {spec}: no channel has axis {missing[0]!r}; axes: {sorted(known)}"
                )
    style, labels = style_context(result, hists, fi_path)
    binning = binning_of(result, hists_candidates(hists, fi_path))

    def label(parameter: str) -> str:
        return display_name(parameter, binning)

    plots, totals = make_plots(
        result, bands, plots_dir, meta, inputs_meta, formats, projections, style, labels
    )
    gofs = None
    if bands is not None:
        from fit.gof import projection_gofs

        plots += template_plots(bands, result, plots_dir, meta, inputs_meta, formats, style, labels)
        plots += closure_plots(
            bands.fi.meta, result, plots_dir, meta, inputs_meta, formats, style, labels
        )
        gofs = projection_gofs(
            bands.model,
            result,
            jacobians={s: bands.jacobian(s) for s in ("prefit", "postfit")},
        )
    plots = (
        fit_plots(result, plots_dir, meta, inputs_meta, formats, style, label)
        + ([] if blinding else mw_comparison(result, plots_dir, meta, inputs_meta, formats, style))
        + plots
    )
    impact_pages = {}
    # one row per nuisance: every parameter but the POIs themselves
    nuis = np.array([p not in result.pois for p in result.parameters], dtype=bool)
    nuisances = [p for p, keep in zip(result.parameters, nuis, strict=True) if keep]
    for poi in result.pois:
        imp = result.impacts.get(poi)
        page = f"impacts_{poi_slug(poi)}.html"
        unit = result.pois[poi].get("unit", "")
        nuisance_page(
            nuisances,
            np.asarray(result.pulls)[nuis],
            np.asarray(result.constraints)[nuis],
            None if imp is None else np.asarray(imp)[nuis],
            groups=[str(g) for g, keep in zip(result.groups, nuis, strict=True) if keep],
            labels=[label(p) for p in nuisances],
            poi=poi,
            unit=unit or "",
            title=f"{name}: pulls, constraints and impacts on {poi}",
            out=run_dir / page,
            plotly_js=f"../{PLOTLY_JS}",
            header='<nav><a href="index.html">run</a> <a href="../index.html">all runs</a></nav>',
        )
        impact_pages[poi] = page
    page = run_dir / "index.html"
    atomic_write_text(
        page,
        run_page(
            name,
            result,
            fitresult,
            plots,
            totals,
            samples_html,
            impact_pages,
            note,
            flags_html=flags_section(result, gofs, label),
            gof_html=gof_section(result, gofs),
        ),
    )
    atomic_write_text(run_dir / "meta.json", json.dumps(meta, indent=1))
    _update_index(
        out,
        {
            "name": name,
            "time": result.meta.get("time", ""),
            "reported": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "fitresult": str(fitresult),
            "command": result.meta.get("command", ""),
            "status": result.status,
            "pois": {
                p: {
                    "value": d.get("value"),
                    "error": d.get("error"),
                    "unit": d.get("unit", ""),
                    **({"blinded": True} if d.get("blinded") else {}),
                }
                for p, d in result.pois.items()
            },
            "gof": {k: float(v) for k, v in (result.gof or {}).items()},
            "n_parameters": len(result.parameters),
        },
    )
    return page


# ----------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("fitresult", type=Path, help="fitresult.h5 written by wmass fit")
    parser.add_argument(
        "hists", type=Path, nargs="*", help="hists.h5 files: sample table and provenance"
    )
    parser.add_argument("--out", type=Path, default=Path("site"), help="the site directory")
    parser.add_argument(
        "--fitinput",
        type=Path,
        default=None,
        help="fitinput.h5 for exact bands on projections; None: the one the fit names",
    )
    parser.add_argument("--name", default=None, help="run name; None: fit time + file stem")
    parser.add_argument(
        "--formats", default="png,pdf", help="comma-separated plot formats (png first)"
    )
    parser.add_argument(
        "--project",
        nargs="+",
        default=None,
        metavar="AXES",
        help="projections besides the unrolled one, axis names joined by '-' "
        "(e.g. pt eta-pt); None: one per axis",
    )


def main(args: argparse.Namespace) -> int:
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    page = write_report(
        args.fitresult,
        args.hists,
        out=args.out,
        fitinput=args.fitinput,
        name=args.name,
        formats=formats or ("png",),
        projections=args.project,
        command="wmass " + shlex.join(sys.argv[1:]) if sys.argv[1:] else None,
    )
    print(f"[report] wrote {page}")
    print(f"[report] index {Path(args.out) / 'index.html'}")
    return 0
