"""The last day of the course: the class's results, unblinded together.

Each student's long exercise ends by writing a small result file (:func:`write_result`):
their name, the fitted m_W and its uncertainty (MeV). ``wmass course collect`` reads the files
of a class, derives every student's hidden true mass from the course secret
(:func:`analysis.course.blinding.hidden_mass_mev`), and writes

- ``pulls.png``: the pull ``(m_fit - m_true) / sigma`` of every student, with the band
  ``|pull| < 1`` and the mean;
- ``class.json``: one row per student (fit, error, truth, residual, pull) and the
  combination, with its provenance.

Every student measured a different mass, so what combines is the **residual**
``r_i = m_fit,i - m_true,i``: its weighted mean ``r = sum(r_i / s_i**2) / sum(1 / s_i**2)``
with error ``1 / sqrt(sum(1 / s_i**2))`` is the class's measurement of the bias of the method
(expected: 0 within its error), and ``chi2 = sum((r_i - r)**2 / s_i**2)`` over
``ndf = n - 1`` says whether the quoted errors describe the spread (expected: about 1).

>>> c = combine([10.0, -10.0], [10.0, 10.0])
>>> c.mean, round(c.error, 6), c.chi2, c.ndf
(0.0, 7.071068, 2.0, 1)
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.course.blinding import (
    BlindingError,
    StudentSample,
    hidden_mass_mev,
    normalise_name,
)
from fit.provenance import atomic_path, atomic_write_text, provenance

__all__ = [
    "CLASS_JSON",
    "PULLS_PNG",
    "ClassResult",
    "Combination",
    "StudentResult",
    "collect",
    "combine",
    "read_result",
    "write_result",
]

CLASS_JSON = "class.json"
PULLS_PNG = "pulls.png"
RESULT_KIND = "wmass-course-result/v1"


@dataclass(frozen=True)
class StudentResult:
    """One student's measurement, before (``truth_mev`` None) or after unblinding."""

    student: str
    mw_fit_mev: float
    mw_err_mev: float
    source: str = ""
    truth_mev: float | None = None

    @property
    def residual_mev(self) -> float:
        if self.truth_mev is None:
            raise BlindingError(f"{self.student}: not unblinded")
        return self.mw_fit_mev - self.truth_mev

    @property
    def pull(self) -> float:
        return self.residual_mev / self.mw_err_mev


@dataclass(frozen=True)
class Combination:
    """Weighted mean of residuals (MeV), its error, chi2 and ndf; pull mean and width."""

    n: int
    mean: float
    error: float
    chi2: float
    ndf: int
    pull_mean: float
    pull_width: float

    @property
    def chi2_ndf(self) -> float:
        return self.chi2 / self.ndf if self.ndf > 0 else float("nan")


@dataclass(frozen=True)
class ClassResult:
    """What ``collect`` found and wrote."""

    students: list[StudentResult]
    combination: Combination
    json_path: Path
    plot_path: Path


def write_result(
    path: str | os.PathLike,
    sample: StudentSample | str | os.PathLike,
    mw_fit_mev: float,
    mw_err_mev: float,
    *,
    fitresult: str | os.PathLike | None = None,
) -> Path:
    """Write a student's result file (JSON, atomically, with provenance) for the facilitator."""
    if not isinstance(sample, StudentSample):
        sample = StudentSample.read(sample)
    if not (math.isfinite(mw_fit_mev) and math.isfinite(mw_err_mev) and mw_err_mev > 0):
        raise BlindingError(f"not a measurement: {mw_fit_mev} +- {mw_err_mev} MeV")
    inputs = [str(sample.path)] + ([str(fitresult)] if fitresult is not None else [])
    record = {
        "kind": RESULT_KIND,
        "student": sample.student,
        "mw_fit_mev": float(mw_fit_mev),
        "mw_err_mev": float(mw_err_mev),
        "meta": provenance({"student": sample.student}, inputs=inputs),
    }
    return atomic_write_text(path, json.dumps(record, indent=1) + "\n")


def read_result(path: str | os.PathLike) -> StudentResult:
    """A student's result file."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        if record.get("kind") != RESULT_KIND:
            raise ValueError(f"kind {record.get('kind')!r}, not {RESULT_KIND!r}")
        result = StudentResult(
            student=str(record["student"]),
            mw_fit_mev=float(record["mw_fit_mev"]),
            mw_err_mev=float(record["mw_err_mev"]),
            source=str(path),
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BlindingError(f"{path}: not a course result file: {err}") from None
    if not result.mw_err_mev > 0:
        raise BlindingError(f"{path}: the uncertainty must be > 0")
    return result


def combine(residuals: Sequence[float], errors: Sequence[float]) -> Combination:
    """The weighted mean of ``residuals`` with ``errors`` (see the module docstring)."""
    r = np.asarray(residuals, dtype=float)
    s = np.asarray(errors, dtype=float)
    if r.shape != s.shape or r.ndim != 1 or len(r) == 0:
        raise BlindingError("combine: one error per residual, at least one")
    if not np.all(s > 0):
        raise BlindingError("combine: every error must be > 0")
    w = 1.0 / s**2
    mean = float(np.sum(w * r) / np.sum(w))
    chi2 = float(np.sum(w * (r - mean) ** 2))
    pulls = r / s
    return Combination(
        n=len(r),
        mean=mean,
        error=float(1.0 / np.sqrt(np.sum(w))),
        chi2=chi2,
        ndf=len(r) - 1,
        pull_mean=float(pulls.mean()),
        pull_width=float(pulls.std(ddof=1)) if len(r) > 1 else float("nan"),
    )


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float as None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _plot(path: Path, students: list[StudentResult], comb: Combination) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pulls = [s.pull for s in students]
    y = np.arange(len(students))
    fig, ax = plt.subplots(figsize=(6.5, 1.2 + 0.3 * len(students)))
    ax.axvspan(-1, 1, color="0.9", label="|pull| < 1")
    ax.axvline(0, color="k", lw=0.8)
    ax.axvline(comb.pull_mean, color="tab:red", ls="--", label=f"mean {comb.pull_mean:+.2f}")
    ax.errorbar(pulls, y, xerr=1.0, fmt="o", color="k", capsize=2)
    ax.set_yticks(y, [s.student for s in students])
    ax.set_xlabel(r"pull $(m_W^{fit} - m_W^{true}) / \sigma$")
    ax.set_title(
        f"{comb.n} students: residual {comb.mean:+.1f} $\\pm$ {comb.error:.1f} MeV, "
        f"$\\chi^2$/ndf = {comb.chi2:.1f}/{comb.ndf}",
        fontsize=9,
    )
    lim = max(3.0, max(abs(p) for p in pulls) + 1.2)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-0.7, len(students) - 0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def collect(
    results: Sequence[str | os.PathLike],
    secret: str,
    out: str | os.PathLike,
    *,
    command: str | None = None,
) -> ClassResult:
    """Unblind every result file in ``results`` with ``secret`` and write ``out/class.json``
    and ``out/pulls.png``. Two files of one student (by normalised name) are an error."""
    if not results:
        raise BlindingError("collect: no result files")
    students: list[StudentResult] = []
    seen: dict[str, str] = {}
    for path in results:
        r = read_result(path)
        key = normalise_name(r.student)
        if key in seen:
            raise BlindingError(f"{path}: a second result of {r.student!r} (first: {seen[key]})")
        seen[key] = str(path)
        students.append(
            StudentResult(
                r.student, r.mw_fit_mev, r.mw_err_mev, r.source, hidden_mass_mev(r.student, secret)
            )
        )
    students.sort(key=lambda s: normalise_name(s.student))
    comb = combine([s.residual_mev for s in students], [s.mw_err_mev for s in students])
    out = Path(out)
    plot_path = out / PULLS_PNG
    _plot(plot_path, students, comb)
    record: dict[str, Any] = {
        "students": [
            {**asdict(s), "residual_mev": s.residual_mev, "pull": s.pull} for s in students
        ],
        "combination": {**asdict(comb), "chi2_ndf": comb.chi2_ndf},
        "meta": provenance(
            {"out": str(out), "n": len(students)},
            inputs=[str(p) for p in results],
            command=command,
        ),
    }
    text = json.dumps(_finite(record), indent=1, allow_nan=False)
    json_path = atomic_write_text(out / CLASS_JSON, text + "\n")
    return ClassResult(students, comb, json_path, plot_path)
