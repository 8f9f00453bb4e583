"""Blinding for the course: every student measures a W mass nobody in the room knows.

Two numbers are derived from a **course secret** (held by the facilitator) and the **student's
name**, with HMAC-SHA256 (key: the secret, UTF-8; message: a label and the normalised name):

- the **hidden mass** of the student's pseudo-data,
  ``m_true = 80379 MeV + (2u - 1) * 50 MeV`` with ``u`` the first 8 bytes of
  ``HMAC(secret, "wmass-course/v1/mass/" + name)`` read as a big-endian integer over ``2**64``,
  rounded to 0.1 MeV: a value within +-50 MeV of the reference mass of the simulation
  (inside the +-100 MeV mass templates, where the fit is linear);
- the **display offset**, ``d = (2v - 1) * 200 MeV`` from the label ``"wmass-course/v1/display/"``
  likewise. Before unblinding the notebooks show ``m_fit - (80379 MeV + d)`` (the *blinded*
  m_W): uncertainties, pulls and impacts are all visible, the central value is not.

The name is normalised (``str.strip``, ``str.casefold``, inner whitespace collapsed to one
space) so ``"Ada  Lovelace "`` and ``"ada lovelace"`` are one student. Different names give
different masses; the same secret and name give the same mass on every machine.

A student's sample directory (made by :func:`make_student_sample`) holds the generator's
files with the mass removed (``truth.json``'s ``mw_data_gev`` and ``provenance.json``'s
``mw`` are ``"blinded"``) and a ``blinding.json``: the name, the scheme, the display offset and
a *commitment* ``HMAC(secret, "wmass-course/v1/commit/" + name + mass)``, so :func:`unblind`
can tell a wrong secret from the right one. The mass itself is nowhere in the directory:
unblinding needs the secret, which the facilitator reveals on the last day.

The **practice secret** (:data:`PRACTICE_SECRET`, used when ``WMASS_COURSE_SECRET`` is not set)
lets a student working alone run everything, unblinding included; its masses are derivable by
anyone who reads this module, so a school sets its own secret.

>>> hidden_mass_mev("Ada Lovelace", "s3cret") == hidden_mass_mev(" ada  lovelace", "s3cret")
True
>>> abs(hidden_mass_mev("Ada Lovelace", "s3cret") - 80379.0) <= 50.0
True
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.constants import MW_REF_MEV
from fit.provenance import atomic_write_text, provenance
from processors.errors import WMassError

__all__ = [
    "BLINDING_JSON",
    "DISPLAY_HALF_RANGE_MEV",
    "MASS_HALF_RANGE_MEV",
    "MW_REF_MEV",
    "PRACTICE_SECRET",
    "SCHEME",
    "BlindingError",
    "StudentSample",
    "blind_text",
    "blinded_mw",
    "course_secret",
    "display_offset_mev",
    "hidden_mass_mev",
    "make_student_sample",
    "normalise_name",
    "student_name",
    "student_slug",
    "unblind",
    "write_blinding",
]

SCHEME = "hmac-sha256/wmass-course/v1"
#: hidden masses are uniform in MW_REF_MEV +- this (MeV)
MASS_HALF_RANGE_MEV = 50.0
#: display offsets are uniform in +- this (MeV)
DISPLAY_HALF_RANGE_MEV = 200.0
#: the secret of self-study (not secret: a school sets WMASS_COURSE_SECRET)
PRACTICE_SECRET = "wmass-course-practice"
BLINDING_JSON = "blinding.json"
SECRET_ENV = "WMASS_COURSE_SECRET"
SECRET_FILE_ENV = "WMASS_COURSE_SECRET_FILE"
STUDENT_ENV = "WMASS_STUDENT"


class BlindingError(WMassError):
    """A blinded sample or secret is missing, inconsistent or wrong."""

    exit_code = 14


def normalise_name(name: str) -> str:
    """The student's name as the derivation uses it (trimmed, case-folded, single spaces)."""
    out = re.sub(r"\s+", " ", str(name).strip()).casefold()
    if not out:
        raise BlindingError("a student name cannot be empty")
    return out


def student_slug(name: str) -> str:
    """A directory-safe form of the name (``"Ada Lovelace"`` -> ``"ada-lovelace"``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", normalise_name(name)).strip("-")
    if not slug:  # a name of symbols only: still a stable, distinct directory name
        slug = hashlib.sha256(normalise_name(name).encode()).hexdigest()[:12]
    return slug


def _uniform(secret: str, label: str, name: str) -> float:
    """``u`` in [0, 1): the first 8 bytes of HMAC-SHA256(secret, label + name) / 2**64."""
    msg = f"wmass-course/v1/{label}/{normalise_name(name)}".encode()
    digest = hmac.new(str(secret).encode(), msg, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def hidden_mass_mev(name: str, secret: str) -> float:
    """The true W mass (MeV) of ``name``'s pseudo-data under ``secret``."""
    u = _uniform(secret, "mass", name)
    return round(MW_REF_MEV + (2.0 * u - 1.0) * MASS_HALF_RANGE_MEV, 1)


def display_offset_mev(name: str, secret: str) -> float:
    """The offset (MeV) the blinded m_W is shown with: ``m_fit - (MW_REF_MEV + offset)``."""
    u = _uniform(secret, "display", name)
    return round((2.0 * u - 1.0) * DISPLAY_HALF_RANGE_MEV, 1)


def _commitment(name: str, secret: str) -> str:
    msg = f"wmass-course/v1/commit/{normalise_name(name)}/{hidden_mass_mev(name, secret):.1f}"
    return hmac.new(str(secret).encode(), msg.encode(), hashlib.sha256).hexdigest()


def course_secret(default: str | None = PRACTICE_SECRET) -> str:
    """The course secret: ``$WMASS_COURSE_SECRET``, else the first line of the file named by
    ``$WMASS_COURSE_SECRET_FILE``, else ``default`` (the practice secret)."""
    secret = os.environ.get(SECRET_ENV)
    if secret:
        return secret
    path = os.environ.get(SECRET_FILE_ENV)
    if path:
        return read_secret_file(path)
    if default is None:
        raise BlindingError(
            f"no course secret: set {SECRET_ENV} (the facilitator reveals it at unblinding)"
        )
    return default


def read_secret_file(path: str | os.PathLike) -> str:
    """The secret in ``path``: its first non-empty line, stripped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise BlindingError(f"{path}: cannot read the course secret: {err}") from None
    for line in lines:
        if line.strip():
            return line.strip()
    raise BlindingError(f"{path}: the secret file is empty")


def student_name(default: str | None = None) -> str:
    """Who is running the notebook: ``$WMASS_STUDENT``, else ``$JUPYTERHUB_USER``, else
    ``default``, else the login name."""
    for var in (STUDENT_ENV, "JUPYTERHUB_USER"):
        if os.environ.get(var):
            return os.environ[var]
    if default:
        return default
    import getpass

    return getpass.getuser()


@dataclass(frozen=True)
class StudentSample:
    """A student's blinded sample directory and what its ``blinding.json`` says."""

    path: Path
    student: str
    display_offset_mev: float
    commitment: str
    practice: bool

    @property
    def datasets(self) -> Path:
        return self.path / "datasets.yaml"

    @classmethod
    def read(cls, path: str | os.PathLike) -> StudentSample:
        path = Path(path)
        try:
            info = json.loads((path / BLINDING_JSON).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise BlindingError(f"{path}: not a blinded course sample ({err})") from None
        if info.get("scheme") != SCHEME:
            raise BlindingError(f"{path / BLINDING_JSON}: unknown scheme {info.get('scheme')!r}")
        return cls(
            path=path,
            student=str(info["student"]),
            display_offset_mev=float(info["display_offset_mev"]),
            commitment=str(info["commitment"]),
            practice=bool(info.get("practice", False)),
        )


def _seal(out: Path) -> None:
    """Remove the data's W mass from the generator's ``truth.json`` and ``provenance.json``."""
    truth_path = out / "truth.json"
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    truth["mw_data_gev"] = "blinded"
    atomic_write_text(truth_path, json.dumps(truth, indent=1))
    prov_path = out / "provenance.json"
    if prov_path.exists():
        prov = json.loads(prov_path.read_text(encoding="utf-8"))
        if isinstance(prov.get("args"), dict) and "mw" in prov["args"]:
            prov["args"]["mw"] = "blinded"
        prov["command"] = "wmass course generate (blinded)"
        atomic_write_text(prov_path, json.dumps(prov, indent=1))


def make_student_sample(
    out: str | os.PathLike,
    name: str,
    secret: str,
    *,
    events: int = 200_000,
    seed: int = 1,
    jobs: int = 1,
) -> StudentSample:
    """Generate ``name``'s pseudo-data at the hidden mass into ``out`` and seal it.

    ``blinding.json`` is written last: a directory without it is incomplete.
    """
    from analysis.generate import generate_samples

    out = Path(out)
    (out / BLINDING_JSON).unlink(missing_ok=True)  # incomplete until written again, last
    mass_gev = hidden_mass_mev(name, secret) / 1000.0
    generate_samples(out, events=events, seed=seed, mw=mass_gev, jobs=jobs, command="")
    _seal(out)
    return write_blinding(out, name, secret, events=events, seed=seed)


def write_blinding(
    out: str | os.PathLike, name: str, secret: str, *, events: int = 0, seed: int = 0
) -> StudentSample:
    """Write ``out/blinding.json`` for ``name`` under ``secret`` (the display offset and the
    commitment, never the mass) and return the sample it describes."""
    out = Path(out)
    info: dict[str, Any] = {
        "student": name,
        "scheme": SCHEME,
        "display_offset_mev": display_offset_mev(name, secret),
        "commitment": _commitment(name, secret),
        "practice": secret == PRACTICE_SECRET,
        "events": events,
        "seed": seed,
        "meta": provenance(
            {"student": name, "events": events, "seed": seed},
            command="wmass course generate (blinded)",
        ),
    }
    atomic_write_text(out / BLINDING_JSON, json.dumps(info, indent=1))
    return StudentSample.read(out)


def blinded_mw(mw_fit_mev: float, sample: StudentSample | str | os.PathLike) -> float:
    """The blinded m_W (MeV) shown before unblinding: ``m_fit - (80379 MeV + offset)``."""
    if not isinstance(sample, StudentSample):
        sample = StudentSample.read(sample)
    return float(mw_fit_mev) - (MW_REF_MEV + sample.display_offset_mev)


_MW_LINE = re.compile(r"\bmW(\s*=\s*)([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)(?=\s*(?:\+-|±))")


_MW_MEAN = re.compile(r"\bmW: mean ([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)")


def blind_text(text: str, sample: StudentSample | str | os.PathLike) -> str:
    """``text`` (e.g. what ``wmass fit`` printed) with every measured ``mW = <value> +- <error>``
    replaced by the blinded value, ``mW (blinded) = <value - hidden offset>``; errors are left
    as they are.

    >>> s = StudentSample(Path("."), "x", 21.0, "", False)
    >>> blind_text("mW = 80400 +- 20.5 MeV", s)
    'mW (blinded) = +0.0 +- 20.5 MeV'
    """
    if not isinstance(sample, StudentSample):
        sample = StudentSample.read(sample)
    text = _MW_LINE.sub(
        lambda m: f"mW (blinded){m.group(1)}{blinded_mw(float(m.group(2)), sample):+.1f}", text
    )
    # the toys' line of ``wmass fit --toys``: "mW: mean <value>, spread <error>"
    return _MW_MEAN.sub(
        lambda m: f"mW (blinded): mean {blinded_mw(float(m.group(1)), sample):+.1f}", text
    )


def unblind(sample: StudentSample | str | os.PathLike, secret: str | None = None) -> float:
    """The true W mass (MeV) of a blinded sample; ``secret`` defaults to
    :func:`course_secret` (the practice secret only for a practice sample)."""
    if not isinstance(sample, StudentSample):
        sample = StudentSample.read(sample)
    if secret is None:
        secret = course_secret(default=PRACTICE_SECRET if sample.practice else None)
    if not hmac.compare_digest(_commitment(sample.student, secret), sample.commitment):
        raise BlindingError(
            f"{sample.path}: this is not the secret the sample was made with "
            "(the facilitator reveals the right one at unblinding)"
        )
    return hidden_mass_mev(sample.student, secret)
