"""Blinding: hidden masses from (secret, name), sealed samples, unblinding."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from analysis.course import (
    BlindingError,
    StudentSample,
    blinded_mw,
    display_offset_mev,
    hidden_mass_mev,
    make_student_sample,
    student_slug,
    unblind,
)
from analysis.course.blinding import MASS_HALF_RANGE_MEV, MW_REF_MEV, PRACTICE_SECRET


def _by_hand(name: str, secret: str) -> float:
    """The documented derivation, written again from the module docstring."""
    msg = ("wmass-course/v1/mass/" + " ".join(name.split()).lower()).encode()
    u = int.from_bytes(hmac.new(secret.encode(), msg, hashlib.sha256).digest()[:8], "big") / 2**64
    return round(80379.0 + (2 * u - 1) * 50.0, 1)


def test_the_hidden_mass_is_the_documented_hmac_of_secret_and_name():
    assert hidden_mass_mev("Ada Lovelace", "s3cret") == _by_hand("Ada Lovelace", "s3cret")
    assert hidden_mass_mev("Emmy Noether", "other") == _by_hand("Emmy Noether", "other")
    # pinned numbers: a change of the derivation would silently change every school's masses
    assert hidden_mass_mev("Ada Lovelace", "topsecret") == 80348.9
    assert hidden_mass_mev("Emmy Noether", "topsecret") == 80364.0


def test_reproducible_normalised_and_different_between_names_and_secrets():
    m = hidden_mass_mev("Ada Lovelace", "s3cret")
    assert hidden_mass_mev("  ada   LOVELACE ", "s3cret") == m
    names = [f"student {i}" for i in range(200)]
    masses = [hidden_mass_mev(n, "s3cret") for n in names]
    assert len(set(masses)) > 160  # 1000 values of 0.1 MeV: ~20 birthday collisions in 200
    assert all(abs(x - MW_REF_MEV) <= MASS_HALF_RANGE_MEV for x in masses)
    assert min(masses) < MW_REF_MEV - 40 and max(masses) > MW_REF_MEV + 40  # spans the range
    assert hidden_mass_mev("Ada Lovelace", "t0psecret") != m
    # the display offset is another number (it must not reveal the mass)
    offsets = [display_offset_mev(n, "s3cret") for n in names]
    assert all(abs(o) <= 200 for o in offsets)
    assert [round(m - MW_REF_MEV, 1) for m in masses] != offsets


def test_slugs_are_directory_names():
    assert student_slug(" Ada  Lovelace") == "ada-lovelace"
    assert student_slug("José Núñez/../x") == "jos-n-ez-x"
    with pytest.raises(BlindingError):
        student_slug("   ")


@pytest.fixture(scope="module")
def sealed(tmp_path_factory):
    out = tmp_path_factory.mktemp("blind") / "ada"
    return make_student_sample(out, "Ada Lovelace", "topsecret", events=9000)


def test_a_student_sample_contains_no_true_mass(sealed):
    mass = hidden_mass_mev("Ada Lovelace", "topsecret")
    assert isinstance(sealed, StudentSample) and sealed.student == "Ada Lovelace"
    truth = json.loads((sealed.path / "truth.json").read_text())
    assert truth["mw_data_gev"] == "blinded"
    prov = json.loads((sealed.path / "provenance.json").read_text())
    assert prov["args"]["mw"] == "blinded"
    needles = [f"{mass / 1000:.4f}", f"{mass / 1000}", f"{mass:.1f}"]
    for p in sealed.path.rglob("*"):
        if p.is_file() and p.suffix in {".json", ".yaml", ".csv"}:
            text = p.read_text()
            for needle in needles:
                assert needle not in text, f"{p.name} contains {needle}"


def test_unblinding_needs_the_right_secret(sealed, monkeypatch):
    monkeypatch.delenv("WMASS_COURSE_SECRET", raising=False)
    monkeypatch.delenv("WMASS_COURSE_SECRET_FILE", raising=False)
    assert unblind(sealed, "topsecret") == hidden_mass_mev("Ada Lovelace", "topsecret")
    with pytest.raises(BlindingError, match="not the secret"):
        unblind(sealed, "guess")
    with pytest.raises(BlindingError, match="no course secret"):
        unblind(sealed)  # a school sample: the practice secret is not tried
    monkeypatch.setenv("WMASS_COURSE_SECRET", "topsecret")
    assert unblind(sealed.path) == hidden_mass_mev("Ada Lovelace", "topsecret")


def test_the_blinded_value_is_the_fit_minus_the_hidden_offset(sealed):
    offset = display_offset_mev("Ada Lovelace", "topsecret")
    assert sealed.display_offset_mev == offset
    assert blinded_mw(80400.0, sealed) == pytest.approx(80400.0 - (80379.0 + offset))
    assert blinded_mw(80400.0, sealed.path) == blinded_mw(80400.0, sealed)


def test_a_directory_without_blinding_json_is_not_a_sample(tmp_path):
    with pytest.raises(BlindingError, match="not a blinded course sample"):
        StudentSample.read(tmp_path)


def test_practice_secret_is_flagged():
    assert PRACTICE_SECRET == "wmass-course-practice"


def test_printed_fit_results_are_blinded(sealed):
    from analysis.course import blind_text

    offset = display_offset_mev("Ada Lovelace", "topsecret")
    printed = "POIs: mW = 80379 + 100 * theta MeV\nmW = 80471.9 +- 140.7 MeV\nnll = 49.4\n"
    out = blind_text(printed, sealed)
    assert "80471.9" not in out
    assert f"mW (blinded) = {80471.9 - (80379.0 + offset):+.1f} +- 140.7 MeV" in out
    assert "POIs: mW = 80379 + 100 * theta MeV" in out  # the reference is not a result
