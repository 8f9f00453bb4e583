"""The course notebooks run top to bottom (nbmake, in a subprocess) and match their source.

Every notebook is executed by ``pytest --nbmake`` exactly as a learner would run it, with the
solutions in place; the ``check`` cells after each exercise assert the physics (a count, a mass,
a fitted m_W against the generator's truth), so a wrong solution fails here. Generated samples
are shared between notebooks through ``WMASS_COURSE_DIR``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def _load_build():
    sys.path.insert(0, str(ROOT / "notebooks"))
    try:
        import build  # notebooks/build.py
    finally:
        sys.path.remove(str(ROOT / "notebooks"))
    return build


@pytest.fixture(scope="session")
def course_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("course")


def test_the_course_has_its_six_notebooks():
    assert [p.stem[:2] for p in NOTEBOOKS] == ["00", "01", "02", "03", "04", "05"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_is_what_build_py_writes(path, tmp_path):
    build = _load_build()
    fresh = build.build(path.stem, build.NOTEBOOKS[path.stem], tmp_path)
    assert fresh.read_text() == path.read_text(), f"run: python notebooks/build.py {path.stem}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_exercise_has_a_collapsed_solution_and_a_check(path):
    cells = json.loads(path.read_text())["cells"]
    tags = [c["metadata"].get("tags", []) for c in cells]
    kinds = [t[0] for t in tags if t]
    assert kinds.count("exercise") >= 1
    assert kinds.count("exercise") == kinds.count("solution") == kinds.count("check")
    for cell, t in zip(cells, tags, strict=True):
        if "solution" in t:
            assert cell["metadata"]["jupyter"]["source_hidden"] is True


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_with_nbmake(path, course_dir):
    env = {**os.environ, "WMASS_COURSE_DIR": str(course_dir)}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbmake",
            "--nbmake-timeout=600",
            str(path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


@pytest.mark.slow
def test_checks_fail_when_the_exercise_is_left_undone(tmp_path):
    """Without its solution cells, notebook 01 stops at the first check: the checks can fail."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = ROOT / "notebooks" / "01-columnar-basics.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if "solution" not in c["metadata"].get("tags", [])]
    client = NotebookClient(nb, timeout=600, kernel_name="python3")
    with pytest.raises(CellExecutionError) as err:
        client.execute(cwd=str(path.parent))
    failed = [
        c for c in nb.cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))
    ]
    assert len(failed) == 1 and "check" in failed[0]["metadata"]["tags"]
    assert "TypeError" in str(err.value) or "AssertionError" in str(err.value)
