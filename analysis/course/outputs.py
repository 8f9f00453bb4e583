"""Blinded outputs: what shows a student's fit -- ``wmass report``, ``wmass inspect``, the
summary ``wmass fit`` prints -- shows the blinded m_W while the student's sample is blinded.

A fit result made from a student's blinded sample holds the fitted m_W itself (the fit stands
alone and knows nothing of courses). The sample is found by following the outputs' provenance
(fit result -> fit input -> hists.h5 -> datasets.yaml, whose directory holds ``blinding.json``,
:mod:`analysis.course.blinding`); the outputs are shown blinded until the course secret is
*set* in the environment and is the sample's (:func:`is_unblinded`).

- :func:`blind_result`: a blinded copy of a fit result, for the report site;
- :func:`blind_description`: ``wmass inspect``'s description, blinded;
- :func:`blinded_stdout`: what ``wmass fit`` prints, blinded (around ``fit.cli.main``).
"""

from __future__ import annotations

import contextlib
import hmac
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from analysis.constants import MW_REF_MEV
from analysis.course.blinding import (
    BLINDING_JSON,
    BlindingError,
    StudentSample,
    _commitment,
    blind_text,
    blinded_mw,
    course_secret,
)

__all__ = [
    "blind_description",
    "blind_printed",
    "blind_result",
    "blinded_stdout",
    "blinding_for",
    "blinding_note",
    "find_sample",
    "is_unblinded",
]


def _inputs_of(path: Path) -> list[Path]:
    """The inputs an output names in its provenance (an HDF5 ``meta`` group, or the
    ``inputs`` of a JSON file's ``meta``)."""
    names: list[Any] = []
    if path.suffix.lower() in {".h5", ".hdf5"}:
        try:
            import h5py

            from fit.provenance import read_meta

            with h5py.File(path, "r") as f:
                names = list(read_meta(f).get("inputs", []) or [])
        except (OSError, ValueError, KeyError, TypeError):
            return []
    return [Path(str(n)) for n in names if isinstance(n, str | os.PathLike)]


def find_sample(*paths: str | os.PathLike, depth: int = 6) -> StudentSample | None:
    """The blinded course sample ``paths`` were made from, or None (not a course output).

    A path is a sample directory, a file in one (``datasets.yaml``), or an HDF5 output whose
    provenance leads to one within ``depth`` steps.
    """
    todo = [(Path(p), 0) for p in paths]
    seen: set[Path] = set()
    while todo:
        path, level = todo.pop(0)
        if path in seen:
            continue
        seen.add(path)
        for directory in (path, path.parent):
            if (directory / BLINDING_JSON).is_file():
                try:
                    return StudentSample.read(directory)
                except BlindingError:
                    continue
        if level < depth and path.is_file():
            todo.extend((p, level + 1) for p in _inputs_of(path))
    return None


def is_unblinded(sample: StudentSample) -> bool:
    """Whether the student may see the fitted m_W: the course secret is *set*
    (``$WMASS_COURSE_SECRET`` or ``$WMASS_COURSE_SECRET_FILE``; the facilitator reveals it on
    the last day; for a practice sample, the practice secret set on purpose) and is the one
    the sample was made with."""
    try:
        secret = course_secret(default=None)
    except BlindingError:
        return False
    return hmac.compare_digest(_commitment(sample.student, secret), sample.commitment)


def blinding_for(*paths: str | os.PathLike) -> StudentSample | None:
    """The sample whose blinding applies to outputs made from ``paths``: None when they are
    not course outputs or the sample is unblinded."""
    sample = find_sample(*paths)
    if sample is None or is_unblinded(sample):
        return None
    return sample


def blinding_note(sample: StudentSample) -> str:
    """One sentence saying what a blinded display shows."""
    return (
        f"BLINDED: m_W is shown as m_fit - ({MW_REF_MEV:.0f} MeV + a hidden offset) for "
        f"{sample.student}'s course sample; uncertainties, pulls and impacts are not blinded. "
        "It unblinds when the course secret is set (WMASS_COURSE_SECRET)."
    )


def _blind_poi(d: dict[str, Any], sample: StudentSample) -> dict[str, Any]:
    shift = MW_REF_MEV + sample.display_offset_mev
    out = dict(d)
    out["value"] = blinded_mw(float(d["value"]), sample)
    if "offset" in out:  # keep value = offset + scale * x
        out["offset"] = float(out["offset"]) - shift
    out["blinded"] = True
    return out


def blind_result(result: Any, sample: StudentSample, poi: str = "mW") -> Any:
    """A copy of a :class:`fit.result.FitResult` with the fitted ``poi`` blinded everywhere it
    is shown (value, likelihood scan, toys); the result itself is not changed."""
    import copy

    out = copy.copy(result)
    if poi not in result.pois:
        return out
    shift = MW_REF_MEV + sample.display_offset_mev
    out.pois = {**result.pois, poi: _blind_poi(result.pois[poi], sample)}
    if poi in (result.scans or {}):
        scan = dict(result.scans[poi])
        scan["values"] = [float(v) - shift for v in scan["values"]]
        out.scans = {**result.scans, poi: scan}
    key = f"poi_{poi}"
    if key in (result.toys or {}):
        import numpy as np

        rep = np.array(result.toys[key], dtype=float, copy=True)
        rep[:, 0] -= shift
        out.toys = {**result.toys, key: rep}
    out.meta = {**(result.meta or {}), "blinding": blinding_note(sample)}
    return out


def blind_description(desc: dict[str, Any], path: str | os.PathLike) -> dict[str, Any]:
    """``wmass inspect``'s description of ``path`` with the fitted m_W blinded when ``path``
    is a still-blinded course output (otherwise ``desc`` itself). The blinded POI keeps its
    keys (``value`` is then the blinded value) and gains ``"blinded": true``; the description
    gains ``"blinding"``, the note."""
    if desc.get("kind") != "fitresult" or "mW" not in (desc.get("pois") or {}):
        return desc
    sample = blinding_for(path)
    if sample is None:
        return desc
    out = dict(desc)
    out["pois"] = {**desc["pois"], "mW": _blind_poi(desc["pois"]["mW"], sample)}
    out["blinding"] = blinding_note(sample)
    return out


def blind_printed(text: str, *paths: str | os.PathLike) -> str:
    """What ``wmass fit`` prints, blinded (:func:`blind_text`) when its input is a still-blinded
    course output; unchanged otherwise."""
    sample = blinding_for(*paths)
    return text if sample is None else blind_text(text, sample)


class _BlindingWriter:
    """A text stream that passes whole lines through :func:`blind_text` to ``target``."""

    def __init__(self, target: Any, sample: StudentSample) -> None:
        self.target, self.sample, self.pending = target, sample, ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.target.write(blind_text(line, self.sample) + "\n")
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.target.write(blind_text(self.pending, self.sample))
            self.pending = ""
        self.target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)


@contextlib.contextmanager
def blinded_stdout(*paths: str | os.PathLike) -> Iterator[None]:
    """While active, every ``mW = <value> +- <error>`` printed to ``sys.stdout`` is blinded
    (:func:`blind_text`) when ``paths`` are still-blinded course outputs; otherwise nothing
    changes. For ``wmass fit``, whose package (``fit``) knows nothing of courses."""
    sample = blinding_for(*paths)
    if sample is None:
        yield
        return
    writer = _BlindingWriter(sys.stdout, sample)
    with contextlib.redirect_stdout(writer):  # type: ignore[type-var]
        try:
            yield
        finally:
            writer.flush()
