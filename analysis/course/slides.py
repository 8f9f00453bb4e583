"""A team's slides, filled from its report site: ``wmass course slides SITE/RUN --team ... --out``.

The template is the one of ``docs/course-slides.md`` (Markdown slides separated by ``---``,
for Marp, reveal.js or ``pandoc -t beamer``), with the numbers and figures of one run of a
``wmass report`` site put in: m_W (the **blinded** value when the report was blinded, see
:mod:`analysis.course.blinding`), its uncertainty, the goodness of fit, the number of
parameters, the largest global impacts, and the report's figures, copied beside the slides
(``<out>/plots/``) so the directory can be zipped and presented anywhere. Brackets ``[...]``
left in the output are for the team to write (what they studied, what they learned).

Every output is written atomically; ``slides.md`` ends with its provenance as an HTML comment.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from string import Template
from typing import Any

from analysis.course.blinding import BlindingError
from fit.provenance import atomic_path, atomic_write_text, provenance

__all__ = ["TEMPLATE", "team_slides"]

#: the figures of a report run the slides show, by role: the first that exists is used
FIGURES = {
    "prefit": ["wmass_prefit_pt.png", "wmunu_prefit_pt.png"],
    "postfit": ["wmass_postfit_pt.png", "wmunu_postfit_pt.png"],
    "closure": ["wmass_nonprompt_closure_pt.png"],
    "pulls": ["pulls.png"],
    "impacts": ["impacts_mW.png"],
    "templates": ["wmass_templates_mW.png", "wmunu_templates_mW.png"],
}

TEMPLATE = Template(
    """\
# ${team}: ${title}

${members} — ${school}

One sentence: what we measured, on what, and the answer${blind_word}: ${mw_line}.

---

## The sample and the selection

- report run `${run}` (${n_parameters} fit parameters, status ${status})
- one tight, isolated muon, pT 26-56 GeV, m_T > 40 GeV (signal region)

${fig_prefit}

---

## The backgrounds

- nonprompt by the extended ABCD method: closure on the QCD simulation

${fig_closure}

---

## The fit

- ${mw_line}
- goodness of fit: chi2/ndf = ${chi2}/${ndf}, p = ${p_value}

${fig_postfit}

---

## Pulls and impacts

${fig_pulls}
${fig_impacts}

The largest impacts on m_W (global impacts): ${impacts}.

---

## Our study: [statistical scaling | linearity | one systematic | the cluster]

- what we changed, and how many fits
- the result, with its uncertainty

${study_figures}

---

## Unblinding (last day)

- m_W = [value] ± [error] MeV, true [value] MeV: pull [..]
- the class: `wmass course collect` → pulls.png, combination (fitted − true) = [..] ± [..] MeV,
  chi2/ndf = [..]

---

## What we learned, what we would do next

- [..]
"""
)


def _run_entry(run_dir: Path) -> dict[str, Any]:
    index = run_dir.parent / "runs.json"
    try:
        runs = json.loads(index.read_text(encoding="utf-8"))["runs"]
    except (OSError, ValueError, KeyError) as err:
        raise BlindingError(f"{index}: not a wmass report site ({err})") from None
    for r in runs:
        if r.get("name") == run_dir.name:
            return r
    raise BlindingError(f"{run_dir}: no run of that name in {index}")


def _impacts(entry: dict[str, Any], n: int = 3) -> str:
    """The ``n`` largest global impacts on m_W (group: MeV), from the run's fit result."""
    try:
        from fit.result import FitResult

        glob = FitResult.read(entry["fitresult"]).global_impacts.get("mW", {})
    except Exception:  # the fit result moved, or has no global impacts
        glob = {}
    top = sorted(((g, v) for g, v in glob.items() if g != "total"), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{g} {v:.0f} MeV" for g, v in top) or "[run wmass fit --global-impacts]"


def team_slides(
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    team: str = "[Team name]",
    title: str = "[project title]",
    members: Sequence[str] = (),
    school: str = "[school, date]",
    study_figures: Sequence[str | os.PathLike] = (),
) -> Path:
    """Write ``out/slides.md`` from the report run ``run_dir`` (``<site>/<run>``) and copy the
    figures it shows into ``out/plots/``; return the path of ``slides.md``."""
    from analysis.report.style import pdg_round

    run_dir, out = Path(run_dir), Path(out)
    entry = _run_entry(run_dir)
    mw = (entry.get("pois") or {}).get("mW")
    if mw is None:
        raise BlindingError(f"{run_dir}: the run has no m_W")
    value, error = pdg_round(float(mw["value"]), float(mw["error"]))
    blinded = bool(mw.get("blinded"))
    mw_line = (
        f"blinded m_W = {value} ± {error} MeV (fitted minus a hidden offset)"
        if blinded
        else f"m_W = {value} ± {error} MeV"
    )
    (out / "plots").mkdir(parents=True, exist_ok=True)
    figs: dict[str, str] = {}
    copied: list[str] = []
    for role, names in FIGURES.items():
        src = next(
            (run_dir / "plots" / n for n in names if (run_dir / "plots" / n).is_file()), None
        )
        if src is None:
            figs[f"fig_{role}"] = f"[no {role} figure in {run_dir.name}]"
            continue
        with atomic_path(out / "plots" / src.name) as tmp:
            shutil.copyfile(src, tmp)
        copied.append(str(src))
        figs[f"fig_{role}"] = f"![{role}](plots/{src.name})"
    study = []
    for fig in study_figures:
        fig = Path(fig)
        with atomic_path(out / "plots" / fig.name) as tmp:
            shutil.copyfile(fig, tmp)
        copied.append(str(fig))
        study.append(f"![{fig.stem}](plots/{fig.name})")
    gof = entry.get("gof") or {}
    text = TEMPLATE.substitute(
        team=team,
        title=title,
        members=", ".join(members) or "[names]",
        school=school,
        blind_word=" (blinded until the last day)" if blinded else "",
        mw_line=mw_line,
        run=entry["name"],
        n_parameters=entry.get("n_parameters", "?"),
        status=entry.get("status", "?"),
        chi2=f"{gof['chi2']:.1f}" if "chi2" in gof else "?",
        ndf=f"{gof['ndf']:.0f}" if "ndf" in gof else "?",
        p_value=f"{gof['p_value']:.3g}" if "p_value" in gof else "?",
        impacts=_impacts(entry),
        study_figures="\n".join(study) or "[our figure: wmass course slides ... --figures FILE]",
        **figs,
    )
    meta = provenance(
        {"run": str(run_dir), "team": team, "blinded": blinded},
        inputs=[str(run_dir.parent / "runs.json"), *copied],
        command="wmass course slides",
    )
    meta["git_diff"] = "(not stored in slides)" if meta.get("git_diff") else ""
    text += f"\n<!-- provenance: {json.dumps(meta)} -->\n"
    return atomic_write_text(out / "slides.md", text)
