"""Outputs are written whole or not at all, and two writers into one site lose nothing."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from analysis.report.site import RUNS_JSON, _update_index
from fit.provenance import atomic_h5, atomic_path, atomic_write_text


def _report_many(out: str, who: str, n: int) -> None:
    from pathlib import Path

    for k in range(n):
        _update_index(Path(out), {"name": f"{who}-{k}", "time": f"2026-11-30T00:{k:02d}"})


def test_two_reports_into_one_site_at_once_lose_no_run(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_report_many, args=(str(tmp_path), w, 25)) for w in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    names = {r["name"] for r in json.loads((tmp_path / RUNS_JSON).read_text())["runs"]}
    assert names == {f"{w}-{k}" for w in "ab" for k in range(25)}
    assert "b-24" in (tmp_path / "index.html").read_text()


def test_a_failed_write_leaves_the_previous_output_and_no_temporary_file(tmp_path):
    target = tmp_path / "fitresult.h5"
    with atomic_h5(target, {"command": "first"}) as f:
        f["x"] = [1.0, 2.0]
    before = target.read_bytes()
    with pytest.raises(RuntimeError, match="disk full"), atomic_h5(target, {}) as f:
        f["x"] = [3.0]
        raise RuntimeError("disk full")
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fitresult.h5"]


def test_atomic_outputs_have_the_umask_mode_and_unique_temporary_names(tmp_path):
    seen = []
    with atomic_path(tmp_path / "a.txt") as t1, atomic_path(tmp_path / "a.txt") as t2:
        seen += [t1, t2]
        t1.write_text("one")
        t2.write_text("two")
    assert seen[0] != seen[1]
    assert (tmp_path / "a.txt").read_text() == "one"  # the first to finish is replaced last
    umask = os.umask(0)
    os.umask(umask)
    path = atomic_write_text(tmp_path / "b.txt", "x")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600
