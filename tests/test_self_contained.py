"""The checkout is self-contained: no file of it points at the project's shared area beside the
clone (schemas, data, design notes). The inspect schemas ship in ``analysis/schemas``, the real
NanoAOD test files are in ``tests/data/nanoaod``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from analysis.schemas import KINDS, schema

ROOT = Path(__file__).resolve().parents[1]
# spelled in pieces so that this file does not match itself
FORBIDDEN = [b"../" + b"shared", b"/work/" + b"shared"]


def _files() -> list[str]:
    """The files git tracks, plus the new ones it would add (untracked, not ignored)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return sorted({name for name in out.decode().split("\0") if name})


def test_no_file_points_outside_the_checkout():
    files = _files()
    assert "README.md" in files
    hits = []
    for name in files:
        path = ROOT / name
        if not path.is_file():  # deleted in the work tree, not yet in the index
            continue
        for lineno, line in enumerate(path.read_bytes().splitlines(), 1):
            hits += [f"{name}:{lineno}: {bad.decode()}" for bad in FORBIDDEN if bad in line]
    assert not hits, "references outside the checkout:\n" + "\n".join(hits)


@pytest.mark.parametrize("kind", KINDS)
def test_the_inspect_schemas_ship_in_the_package(kind):
    doc = schema(kind)
    assert doc["properties"]["kind"] == {"const": kind}
    assert (ROOT / "analysis" / "schemas" / f"inspect-{kind}.schema.json").is_file()


def test_an_unknown_kind_has_no_schema():
    with pytest.raises(ValueError, match="no inspect schema"):
        schema("fitinput")
