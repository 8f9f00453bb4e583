"""Pre-rendered expected outputs of the course, for a facilitator to compare with.

Each notebook's **answer key** is executed on a fixed example student's blinded sample and
stored as ``notebooks/expected/NN-name.ipynb`` (the answer key's cells, with their outputs),
plus ``notebooks/expected/checks.json``: what each ``check`` cell printed (the physics numbers
a student should see), the run's wall time, CPU time and peak memory, and provenance.

To keep the repository small, images are shrunk (at most :data:`MAX_WIDTH` pixels wide,
a 64-colour palette) and any other output above :data:`MAX_OUTPUT_BYTES` is replaced by a
line saying so. The example student and secret (:data:`STUDENT`, :data:`SECRET`) are
*not* a school's: the numbers differ from a student's only through the hidden mass, which
moves the W line shape a little.

Usage::

    .venv/bin/python notebooks/expected.py            # execute every answer key (~15 min)
    .venv/bin/python notebooks/expected.py 13 14      # only the sources starting so
    .venv/bin/python notebooks/expected.py --check    # exit 1 when an expected notebook is stale

An expected notebook is *stale* when its cells' sources differ from the current answer key
(``tests/notebooks/test_expected.py`` fails then): run this script for that notebook again.
Every file is written atomically (``fit.provenance.atomic_write_text``).
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import io
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXPECTED = HERE / "expected"
CHECKS = EXPECTED / "checks.json"
#: the example student and secret of the expected outputs (not a school's secret)
STUDENT = "Expected Outputs"
SECRET = "wmass-course-expected-outputs"
MAX_WIDTH = 480
MAX_OUTPUT_BYTES = 20_000

if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import build  # noqa: E402  (notebooks/build.py)


def target(path: Path) -> Path:
    return EXPECTED / f"{path.stem}.ipynb"


def cell_signature(nb: nbformat.NotebookNode) -> list[tuple[str, str, str]]:
    """What must not drift between an expected notebook and the answer key: every cell's id,
    type and source."""
    return [(c.id, c.cell_type, c.source) for c in nb.cells]


def source_hash(nb: nbformat.NotebookNode) -> str:
    return hashlib.sha256(json.dumps(cell_signature(nb)).encode()).hexdigest()


def _shrink_png(data: str) -> str:
    from PIL import Image

    img = Image.open(io.BytesIO(base64.b64decode(data)))
    if img.width > MAX_WIDTH:
        img = img.resize((MAX_WIDTH, round(img.height * MAX_WIDTH / img.width)), Image.LANCZOS)
    img = img.convert("RGB").quantize(colors=64)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return base64.b64encode(out.getvalue()).decode()


def shrink(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` with small images, no oversized outputs and no per-run execution metadata."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            data = out.get("data")
            if not data:
                continue
            if "image/png" in data:
                data["image/png"] = _shrink_png(data["image/png"])
            for mime in list(data):
                if mime == "image/png":
                    continue
                if len(json.dumps(data[mime])) > MAX_OUTPUT_BYTES:
                    del data[mime]
                    data.setdefault(
                        "text/plain", f"[{mime} output of the notebook, not stored: too large]"
                    )
    return nb


def _stream_text(cell: nbformat.NotebookNode) -> str:
    return "".join(
        o.get("text", "")
        for o in cell.get("outputs", [])
        if o.get("output_type") == "stream" and o.get("name") == "stdout"
    )


def check_outputs(nb: nbformat.NotebookNode) -> list[dict[str, str]]:
    """What every check cell printed, by cell id."""
    return [
        {"cell": c.id, "printed": _stream_text(c).strip()}
        for c in nb.cells
        if "check" in c.get("metadata", {}).get("tags", [])
    ]


def _provenance(args: dict[str, Any]) -> dict[str, Any]:
    from fit.provenance import provenance

    meta = provenance(args, command="python notebooks/expected.py")
    diff = meta.get("git_diff") or ""
    # the working tree's diff can be large: its hash says whether the tree was clean
    meta["git_diff"] = (
        f"sha256:{hashlib.sha256(diff.encode()).hexdigest()} ({len(diff)} bytes)" if diff else ""
    )
    return meta


def execute(path: Path, course_dir: Path, timeout: int = 900) -> tuple[Any, dict[str, Any]]:
    """Run the answer key of ``path`` in ``course_dir``; return it and its resources."""
    from nbclient import NotebookClient

    nb = build.notebook(path, "answers")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WMASS_COURSE")}
    env.pop("JUPYTERHUB_SERVICE_PREFIX", None)
    env.update(
        WMASS_COURSE_DIR=str(course_dir),
        WMASS_COURSE_SECRET=SECRET,
        WMASS_STUDENT=STUDENT,
        WMASS_NANOAOD=str(ROOT / "tests" / "data" / "nanoaod"),
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernel inherits the environment of this process
    peak = _PeakMemory()
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3")
        with peak:
            client.execute(cwd=str(course_dir))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    res = {
        "wall_s": round(wall, 1),
        # user + system of the kernel and its Dask workers (reaped descendants)
        "cpu_s": round(cpu, 1),
        # the largest descendant so far (kernel or Dask worker): an upper bound for this one
        "peak_rss_gb_upper_bound": round(after.ru_maxrss / 1024**2, 2),
    }
    if peak.largest:
        # sampled every 0.2 s: the largest process, and all processes together
        res["peak_rss_gb"] = round(peak.largest / 1024**3, 2)
        res["peak_rss_all_processes_gb"] = round(peak.total / 1024**3, 2)
    return nb, res


class _PeakMemory:
    """Samples the resident memory of this process's descendants (kernel, Dask workers) on a
    thread: the largest single process and the largest sum (psutil; nothing without it)."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval, self.largest, self.total = interval, 0, 0
        self._stop = None

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            rss = []
            for child in me.children(recursive=True):
                try:
                    rss.append(child.memory_info().rss)
                except psutil.Error:
                    continue
            if rss:
                self.largest = max(self.largest, max(rss))
                self.total = max(self.total, sum(rss))
            self._stop.wait(self.interval)

    def __enter__(self) -> _PeakMemory:
        import threading

        try:
            import psutil  # noqa: F401
        except ImportError:
            return self
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._stop.set()
            self._thread.join()


def write(path: Path, nb: nbformat.NotebookNode, res: dict[str, Any]) -> None:
    """Store the expected notebook and its entry of ``checks.json``, atomically."""
    from fit.provenance import atomic_write_text

    small = shrink(nb)
    answer = build.notebook(path, "answers")
    meta = _provenance({"notebook": path.stem, "student": STUDENT, "secret": SECRET})
    small.metadata["wmass_expected"] = {
        "answer_key_sha256": source_hash(answer),
        "student": STUDENT,
        "secret": SECRET,
        "meta": meta,
    }
    atomic_write_text(target(path), nbformat.writes(small) + "\n")
    checks = json.loads(CHECKS.read_text(encoding="utf-8")) if CHECKS.exists() else {}
    checks[path.stem] = {
        "answer_key_sha256": source_hash(answer),
        "checks": check_outputs(nb),
        "resources": res,
        "meta": meta,
    }
    atomic_write_text(CHECKS, json.dumps(dict(sorted(checks.items())), indent=1) + "\n")


def stale(prefixes: Sequence[str] = ()) -> list[Path]:
    """Expected notebooks missing or whose cells differ from the answer key's."""
    out = []
    for path in build.sources(prefixes):
        t = target(path)
        if not t.exists():
            out.append(t)
            continue
        stored = nbformat.read(t, as_version=4)
        if cell_signature(stored) != cell_signature(build.notebook(path, "answers")):
            out.append(t)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prefixes", nargs="*", help="only sources starting so")
    parser.add_argument("--check", action="store_true", help="exit 1 if one is stale")
    parser.add_argument("--course-dir", help="work directory (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.check:
        bad = stale(args.prefixes)
        for t in bad:
            print(f"stale: {t}", file=sys.stderr)
        return 1 if bad else 0
    course_dir = Path(args.course_dir or tempfile.mkdtemp(prefix="wmass-expected-"))
    course_dir.mkdir(parents=True, exist_ok=True)
    for path in build.sources(args.prefixes):
        print(f"{path.stem}: running the answer key in {course_dir}", flush=True)
        nb, res = execute(path, course_dir)
        write(path, nb, res)
        print(f"{path.stem}: {res}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
