"""The pre-rendered expected outputs (``notebooks/expected/``, made by
``notebooks/expected.py``) are those of the current answer keys: same cells (ids, types,
sources), every check cell ran and printed its "right: ..." line, no error output, small
images, provenance, and the repository stays small.
"""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NB_DIR = ROOT / "notebooks"
SOURCES = sorted((NB_DIR / "src").glob("[0-9][0-9]-*.py"))
IDS = [p.stem for p in SOURCES]


def _load(name: str):
    sys.path.insert(0, str(NB_DIR))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(NB_DIR))


build = _load("build")
expected = _load("expected")
CHECKS = json.loads(expected.CHECKS.read_text(encoding="utf-8"))


def test_every_notebook_has_expected_outputs_and_nothing_else():
    assert sorted(p.stem for p in expected.EXPECTED.glob("*.ipynb")) == IDS
    assert sorted(CHECKS) == IDS


@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_expected_outputs_are_of_the_current_answer_key(path):
    stored = nbformat.read(expected.target(path), as_version=4)
    answer = build.notebook(path, "answers")
    assert expected.cell_signature(stored) == expected.cell_signature(answer), (
        f"stale: run python notebooks/expected.py {path.stem[:2]}"
    )
    digest = expected.source_hash(answer)
    assert stored.metadata["wmass_expected"]["answer_key_sha256"] == digest
    assert CHECKS[path.stem]["answer_key_sha256"] == digest


@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_every_check_ran_and_printed_right(path):
    stored = nbformat.read(expected.target(path), as_version=4)
    checks = [c for c in stored.cells if "check" in c.metadata.get("tags", [])]
    assert checks
    for cell in stored.cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", f"{cell.id}: an error in the expected run"
    recorded = {c["cell"]: c["printed"] for c in CHECKS[path.stem]["checks"]}
    assert set(recorded) == {c.id for c in checks}
    for cell in checks:
        assert "right" in expected._stream_text(cell), f"{cell.id}: the check printed no 'right'"
        assert recorded[cell.id] == expected._stream_text(cell).strip()


@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_expected_outputs_carry_provenance_and_resources(path):
    entry = CHECKS[path.stem]
    for key in ("command", "time", "git_hash", "versions"):
        assert entry["meta"].get(key), f"{path.stem}: no {key} in the provenance"
    res = entry["resources"]
    assert 0 < res["wall_s"] < 900 and res["cpu_s"] > 0 and res["peak_rss_gb_upper_bound"] > 0
    stored = nbformat.read(expected.target(path), as_version=4)
    assert stored.metadata["wmass_expected"]["student"] == expected.STUDENT


def test_images_are_small_and_the_directory_stays_small():
    from PIL import Image

    total = sum(p.stat().st_size for p in expected.EXPECTED.iterdir())
    assert total < 4_000_000, f"notebooks/expected is {total / 1e6:.1f} MB"
    n = 0
    for p in expected.EXPECTED.glob("*.ipynb"):
        for cell in nbformat.read(p, as_version=4).cells:
            for out in cell.get("outputs", []):
                png = out.get("data", {}).get("image/png")
                if png:
                    img = Image.open(io.BytesIO(base64.b64decode(png)))
                    assert img.width <= expected.MAX_WIDTH
                    n += 1
    assert n >= 5, "the expected outputs keep the figures"


def test_stale_finds_a_changed_answer_key(tmp_path, monkeypatch):
    """The staleness test can fail: an answer key one character different is stale."""
    path = SOURCES[0]
    changed = tmp_path / "src" / path.name
    changed.parent.mkdir()
    changed.write_text(path.read_text(encoding="utf-8") + "\n# %%\nprint('changed')\n")
    monkeypatch.setattr(build, "SRC", changed.parent)
    assert expected.stale([path.stem[:2]]) == [expected.target(changed)]
