"""Fuzz campaign: corrupted ROOT files and configurations end in a named error, never worse.

Cases, all made from a small generated sample and its configuration:

- ROOT files (``wmass histmaker``, iterative executor, one chunk): truncations at many
  offsets, bytes flipped in the file header, in the directory (the top directory record, the
  key list, the ``Events`` tree's metadata), in the streamer info and in the baskets (their
  key headers and their compressed payloads), an empty file, random bytes, a file whose tree
  has another name, missing branches and mistyped branches (rewritten with uproot); a few of
  them again with ``--skip-bad-files`` beside the intact file.
- configurations: ``datasets.yaml`` (truncated, flipped, and a list of structural mistakes:
  wrong types, missing keys, unknown keys, a Python tag, non-UTF-8, ...), the cluster YAML of
  ``deploy/slurm.yaml`` (``--cluster``), the correctionlib JSON given with ``--corrections``,
  pyhf workspaces and ``fitinput.h5`` files for ``wmass fit``.

Outcomes: ``named error`` (exit code 1, a ``wmass CMD: error:`` line naming the file, no
``Traceback``), ``skipped`` (``--skip-bad-files``: the file listed in ``files_failed`` and the
histograms those of the intact file alone), ``same result`` (the corrupted file still reads and
gives exactly the histograms of the original), ``accepted`` (a configuration that is still
valid after the mutation: a flipped byte in a comment, a changed number); failures:
``TRACEBACK``, ``HANG`` (over the time bound), ``CRASH`` (the process died), ``UNNAMED`` (an
error whose message does not name the file), ``DIFFERENT`` (read without error, different
histograms).

The cases run through ``analysis.cli.main`` (what the ``wmass`` script calls) in a server
subprocess that takes one case after another, so the imports and compilations are paid once;
each case has a time bound, after which the server is killed (``HANG``) and restarted.

    python benchmarks/fuzz.py               # >= 200 ROOT cases, >= 100 configuration cases
    python benchmarks/fuzz.py --every 4     # every 4th case

``tests/reliability/test_fuzz.py`` runs a sample of the cases with the same functions.

Why one module of ~940 lines: a table of ~400 cases (ROOT files cut, branches renamed or
retyped, configurations corrupted) and the one runner that classifies each outcome; the cases
are data, read top to bottom.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# run as a script, this folder is sys.path[0], where benchmarks/fit.py would shadow the fit package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from benchmarks._common import histmaker_argv  # noqa: E402

ROOT = HERE.parent
MARK = "@@fuzz@@"
GOOD = ("named error", "skipped", "same result", "accepted")


@dataclass
class Case:
    """One corrupted input and the command that reads it.

    ``names``: strings of which one must appear in the error message (the file);
    ``compare``: a run without error must give the reference histograms (``"single"``: the
    intact file's, ``"pair"``: the intact file twice); ``skip``: ``--skip-bad-files`` was given
    and ``bad`` is the file that may be listed as failed."""

    kind: str
    name: str
    argv: list[str]
    names: list[str]
    compare: str | None = None
    skip: bool = False
    bad: str | None = None
    out: str | None = None
    accepted_if_ok: bool = False
    #: a run without error is a silently different result unless stderr names this
    silent_unless_warned: str | None = None


@dataclass
class Result:
    case: Case
    outcome: str
    detail: str = ""
    seconds: float = 0.0


# -- the server: cases through analysis.cli.main, one process ---------------------------------


def serve() -> None:
    """Read JSON cases (``{"argv": [...]}``) from stdin, run each through ``analysis.cli.main``
    with stdout and stderr captured, answer one ``MARK``-prefixed JSON line per case. An
    exception that escapes ``main`` is what the ``wmass`` script would print as a traceback."""
    import warnings

    warnings.simplefilter("ignore")
    from analysis import cli

    real_stdout = sys.stdout
    for line in sys.stdin:
        argv = json.loads(line)["argv"]
        out, err = io.StringIO(), io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli.main(argv)
            except SystemExit as exc:  # argparse
                rc = exc.code if isinstance(exc.code, int) else 2
            except BaseException:  # noqa: BLE001 - what would reach the user as a traceback
                traceback.print_exc()
                rc = 1
        answer = {
            "rc": rc,
            "stdout": out.getvalue()[-4000:],
            "stderr": err.getvalue()[-8000:],
            "seconds": time.perf_counter() - t0,
        }
        real_stdout.write(MARK + json.dumps(answer) + "\n")
        real_stdout.flush()


class Server:
    """The server subprocess; :meth:`run` sends a case and waits at most ``timeout``."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: subprocess.Popen | None = None

    def _start(self) -> None:
        code = "import sys; sys.path.insert(0, %r); from benchmarks.fuzz import serve; serve()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code % str(ROOT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=self.env,
            cwd=str(ROOT),
        )

    def run(self, argv: Sequence[str], timeout: float) -> dict:
        """``{"rc", "stdout", "stderr", "seconds"}``, or ``{"hang": True}`` / ``{"died": rc}``."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc and self.proc.stdin and self.proc.stdout
        t0 = time.monotonic()
        self.proc.stdin.write(json.dumps({"argv": list(argv)}) + "\n")
        self.proc.stdin.flush()
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            while True:
                left = timeout - (time.monotonic() - t0)
                if left <= 0 or not sel.select(left):
                    self.close()
                    return {"hang": True, "seconds": time.monotonic() - t0}
                line = self.proc.stdout.readline()
                if not line:  # the server died with the case
                    rc = self.proc.wait(10)
                    self.proc = None
                    return {"died": rc, "seconds": time.monotonic() - t0}
                if line.startswith(MARK):
                    return json.loads(line[len(MARK) :])
        finally:
            sel.close()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self.proc = None


# -- comparing histograms ---------------------------------------------------------------------


def same_content(path: str | Path, reference: str | Path) -> tuple[bool, str]:
    """The histograms (values, variances, flow bins), events and sum of weights agree exactly
    (the file names in the bookkeeping differ and are not compared)."""
    from analysis.io import read_histograms

    a, b = read_histograms(path), read_histograms(reference)
    if set(a.datasets) != set(b.datasets):
        return False, "datasets differ"
    for name in a.datasets:
        x, y = a[name], b[name]
        if (x.events_read, x.events_selected, x.sumw) != (y.events_read, y.events_selected, y.sumw):
            return False, f"{name}: events or sumw {x.events_read} {x.sumw} vs {y.sumw}"
        if [c[1:] for c in x.chunks] != [c[1:] for c in y.chunks]:
            return False, f"{name}: chunks"
        if set(x.histograms) != set(y.histograms):
            return False, f"{name}: histogram names"
        for h, hx in x.histograms.items():
            vx, vy = hx.view(flow=True), y.histograms[h].view(flow=True)
            if hx.axes != y.histograms[h].axes or not np.array_equal(vx, vy):
                return False, f"{name}/{h} differs"
    return True, ""


def same_fit(path: str | Path, reference: str | Path) -> tuple[bool, str]:
    """The fitted parameters, their errors and the NLL agree exactly."""
    from fit.result import FitResult

    a, b = FitResult.read(path), FitResult.read(reference)
    if list(a.parameters) != list(b.parameters):
        return False, "other parameters"
    if not (np.array_equal(a.values, b.values) and np.array_equal(a.errors, b.errors)):
        d = float(np.max(np.abs(np.asarray(a.values) - np.asarray(b.values))))
        return False, f"fitted values differ (max |diff| {d:.3g})"
    return (a.nll == b.nll), "" if a.nll == b.nll else "NLL differs"


def judge(case: Case, answer: dict, refs: dict[str, str]) -> Result:
    """The outcome of one case from the server's answer."""
    secs = float(answer.get("seconds", 0.0))
    if answer.get("hang"):
        return Result(case, "HANG", f"no answer in {secs:.0f} s", secs)
    if "died" in answer:
        return Result(case, "CRASH", f"the process ended with {answer['died']}", secs)
    rc, err = answer["rc"], answer["stderr"]
    last = next((ln for ln in reversed(err.strip().splitlines()) if ln.strip()), "")
    if "Traceback" in err:
        return Result(case, "TRACEBACK", last[:200], secs)
    if rc == 0:
        if case.skip and case.out:
            from analysis.io import read_histograms

            failed = [
                f["file"]
                for ds in read_histograms(case.out).datasets.values()
                for f in ds.files_failed
            ]
            if failed:
                if failed != [case.bad] or case.bad not in answer["stdout"].replace("\n", ""):
                    return Result(case, "UNNAMED", f"files_failed {failed}", secs)
                same, why = same_content(case.out, refs["single"])
                return Result(case, "skipped" if same else "DIFFERENT", why, secs)
        if case.compare == "fit" and case.out:
            same, why = same_fit(case.out, refs["fit"])
            return Result(case, "same result" if same else "DIFFERENT", why, secs)
        if case.compare and case.out:
            same, why = same_content(case.out, refs[case.compare])
            return Result(case, "same result" if same else "DIFFERENT", why, secs)
        if case.silent_unless_warned is not None:
            if case.silent_unless_warned in err:
                return Result(case, "accepted", "warned", secs)
            return Result(case, "SILENT", f"no word about {case.silent_unless_warned!r}", secs)
        if case.accepted_if_ok:
            return Result(case, "accepted", "", secs)
        return Result(case, "UNEXPECTED", "exit 0 where an error was due", secs)
    if rc is not None and 0 < rc < 126 and " error: " in err:  # each kind has its exit code
        message = err.split(" error: ", 1)[1]
        if any(n in message for n in case.names):
            return Result(case, "named error", message.strip().splitlines()[0][:200], secs)
        return Result(case, "UNNAMED", message.strip()[:200], secs)
    return Result(case, "UNEXPECTED", f"exit {rc}: {last[:200]}", secs)


# -- the inputs -------------------------------------------------------------------------------


@dataclass
class Inputs:
    """The intact inputs every case is a mutation of."""

    dir: Path
    root: Path  # a NanoAOD file (W -> mu nu)
    corrections: Path
    datasets_text: str  # a datasets.yaml for ``root`` (with FILE for its path)
    workspace: dict
    fitinput: Path
    cluster_yaml: Path
    refs: dict[str, str] = field(default_factory=dict)


def make_inputs(d: Path, *, events: int = 1000, seed: int = 3) -> Inputs:
    """A generated sample, its first W file, a small pyhf workspace and fit input."""
    from analysis.generate import generate_samples

    gen = generate_samples(d / "gen", events=events, files_per_process=1, seed=seed)
    root = gen.parent / "wmunu" / "nano_0.root"
    datasets_text = (
        "# the fuzz campaign's datasets\n"
        "lumi_pb: 1000.0\n"
        "datasets:\n"
        "  wmunu:\n"
        "    process: Wmunu\n"
        "    is_data: false\n"
        "    xsec_pb: 20508.9\n"
        "    files:\n"
        "    - FILE\n"
    )
    return Inputs(
        dir=d,
        root=root,
        corrections=gen.parent / "corrections.json",
        datasets_text=datasets_text,
        workspace=small_workspace(),
        fitinput=small_fitinput(d / "fitinput.h5"),
        cluster_yaml=ROOT / "deploy" / "slurm.yaml",
    )


def small_workspace() -> dict:
    """A valid pyhf workspace: one channel of 3 bins, signal (POI ``mu``) and background."""
    return {
        "channels": [
            {
                "name": "sr",
                "samples": [
                    {
                        "name": "signal",
                        "data": [5.0, 10.0, 5.0],
                        "modifiers": [{"name": "mu", "type": "normfactor", "data": None}],
                    },
                    {
                        "name": "bkg",
                        "data": [50.0, 60.0, 40.0],
                        "modifiers": [
                            {"name": "norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}},
                            {"name": "stat", "type": "staterror", "data": [3.0, 3.0, 3.0]},
                        ],
                    },
                ],
            }
        ],
        "observations": [{"name": "sr", "data": [57.0, 72.0, 44.0]}],
        "measurements": [
            {
                "name": "meas",
                "config": {"poi": "mu", "parameters": [{"name": "mu", "bounds": [[-5, 10]]}]},
            }
        ],
        "version": "1.0.0",
    }


def small_fitinput(path: Path) -> Path:
    """A valid fitinput.h5: one channel of 2 x 4 bins, a POI, a norm and a shape nuisance."""
    import hist

    from fit.builder import FitInputBuilder

    ax = (hist.axis.Regular(2, 0, 2, name="eta"), hist.axis.Regular(4, 26, 56, name="pt"))

    def h(values: np.ndarray) -> hist.Hist:
        out = hist.Hist(*ax)
        out[...] = values
        return out

    sig = np.array([[100.0, 200, 150, 50], [90, 190, 160, 60]])
    bkg = np.full((2, 4), 80.0)
    b = FitInputBuilder()
    b.add_channel("ch", h(np.round(sig * 1.1 + bkg)))
    b.add_process("ch", "sig", h(sig), signal=True)
    b.add_process("ch", "bkg", h(bkg))
    b.add_poi("mu", variations={("ch", "sig"): (h(sig * 1.1), h(sig * 0.9))}, scale=1.0)
    b.add_norm("lumi", ["sig", "bkg"], 1.02, group="lumi")
    b.add_systematic("shape", {("ch", "bkg"): h(bkg * np.linspace(0.9, 1.1, 4))}, group="bkg")
    b.build().write(path)
    return path


# -- mutations --------------------------------------------------------------------------------


def flip(data: bytes, offset: int, rng: random.Random) -> bytes:
    """``data`` with the byte at ``offset`` replaced by a different random byte."""
    b = bytearray(data)
    b[offset] = (b[offset] + rng.randrange(1, 256)) % 256
    return bytes(b)


def root_regions(path: Path) -> dict[str, list[tuple[int, int]]]:
    """Byte ranges of a ROOT file: header, directory (top directory record, key list, the
    tree's key and metadata), streamers, basket key headers, basket payloads."""
    import uproot

    f = uproot.open(path)
    size = path.stat().st_size
    regions: dict[str, list[tuple[int, int]]] = defaultdict(list)
    regions["header"].append((0, int(f.file.fBEGIN)))
    regions["directory"].append((int(f.file.fBEGIN), int(f.file.fBEGIN) + 100))
    keys = int(f.fSeekKeys)
    regions["directory"].append((keys, min(size, keys + 200)))
    for name in ("Events", "LuminosityBlocks"):
        if name in f:
            key = f.key(name)
            start = int(key.fSeekKey)
            regions["directory"].append((start, start + int(key.fNbytes)))
    info = int(f.file.fSeekInfo)
    regions["streamer"].append((info, min(size, info + 400)))
    for branch in f["Events"].branches:
        n = branch.num_baskets
        seeks = branch.member("fBasketSeek")[:n]
        sizes = branch.member("fBasketBytes")[:n]
        for seek, nbytes in zip(seeks, sizes, strict=True):
            head = min(int(nbytes), 70)
            regions["basket header"].append((int(seek), int(seek) + head))
            if nbytes > head:
                regions["basket payload"].append((int(seek) + head, int(seek) + int(nbytes)))
    return regions


def _in(regions: list[tuple[int, int]], rng: random.Random) -> int:
    lo, hi = rng.choice(regions)
    return rng.randrange(lo, max(hi, lo + 1))


def rewrite_events(src: Path, dst: Path, change: Callable[[dict], dict], tree: str = "Events"):
    """Copy the ``Events`` tree of ``src`` into ``dst`` through ``change`` (branch name ->
    array; jagged collections as ``Name_field`` are zipped again), as tree ``tree``."""
    import awkward as ak
    import uproot

    arrays = uproot.open(src)["Events"].arrays(library="ak")
    columns = {name: arrays[name] for name in arrays.fields}
    columns = change(columns)
    jagged = {n: a for n, a in columns.items() if isinstance(ak.type(a).content, ak.types.ListType)}
    flat = {n: a for n, a in columns.items() if n not in jagged}
    groups: dict[str, dict] = defaultdict(dict)
    for name, a in jagged.items():
        coll, _, fld = name.partition("_")
        groups[coll][fld or coll] = a
    out: dict = {n: a for n, a in flat.items() if not (n.startswith("n") and n[1:] in groups)}
    for coll, fields in groups.items():
        by_len: dict[tuple, dict] = defaultdict(dict)
        for fld, a in fields.items():
            by_len[tuple(ak.num(a).to_list())][fld] = a
        for k, (_, members) in enumerate(by_len.items()):
            name = coll if k == 0 else f"{coll}{k}"
            out[name] = ak.zip(members)
    with uproot.recreate(dst) as f:
        f[tree] = out


def root_cases(inp: Inputs, work: Path, rng: random.Random) -> list[Case]:
    """>= 200 corrupted ROOT files, each in a datasets.yaml of its own."""
    good = inp.root.read_bytes()
    size = len(good)
    regions = root_regions(inp.root)
    files: list[tuple[str, str, Path]] = []  # (kind, name, path)
    d = work / "root"
    d.mkdir(parents=True, exist_ok=True)

    def add(kind: str, name: str, data: bytes | None = None) -> Path:
        path = d / f"{len(files):03d}.root"
        if data is not None:
            path.write_bytes(data)
        files.append((kind, name, path))
        return path

    offsets = sorted({0, 1, 4, 50, 99, 100, 200, 500, size - 1, size - 10, size - 100})
    offsets += sorted(rng.sample(range(1, size), 50))
    for off in offsets:
        add("truncated", f"at {off}", good[:off])
    for kind, n in (
        ("header flip", 30),
        ("directory flip", 40),
        ("streamer flip", 15),
        ("basket header flip", 30),
        ("basket payload flip", 30),
    ):
        region = regions[kind.removesuffix(" flip")]
        for _ in range(n):
            off = _in(region, rng)
            add(kind, f"byte {off}", flip(good, off, rng))
    add("empty", "0 bytes", b"")
    add("garbage", "random bytes", rng.randbytes(20_000))
    add("garbage", "ROOT magic then random", b"root" + rng.randbytes(20_000))
    # control: rewritten by uproot unchanged (the rewrites below must read like the original)
    rewrite_events(inp.root, add("rewritten (control)", "unchanged"), lambda c: c)
    # the tree under another name, or missing/mistyped branches
    rewrite_events(inp.root, add("wrong tree", "tree 'events'"), lambda c: c, tree="events")
    rewrite_events(inp.root, add("wrong tree", "tree 'Tree'"), lambda c: c, tree="Tree")
    for branch in ("MET_pt", "genWeight", "Muon_pt", "HLT_IsoMu24", "Pileup_nTrueInt", "run"):

        def drop(c: dict, b: str = branch) -> dict:
            return {k: v for k, v in c.items() if k != b}

        rewrite_events(inp.root, add("missing branch", branch), drop)
    for branch, dtype in (
        ("MET_pt", np.int32),
        ("genWeight", np.int8),
        ("HLT_IsoMu24", np.float32),
        ("Muon_charge", np.float64),
        ("Muon_pt", np.int16),
        ("event", np.float32),
    ):

        def retype(c: dict, b: str = branch, t=dtype) -> dict:
            import awkward as ak

            return {**c, b: ak.values_astype(c[b], t)}

        rewrite_events(inp.root, add("mistyped branch", f"{branch} as {dtype.__name__}"), retype)

    def text(files_: list[Path]) -> str:
        return inp.datasets_text.replace("    - FILE\n", "".join(f"    - {f}\n" for f in files_))

    cases = []
    for k, (kind, name, path) in enumerate(files):
        yaml_path = path.with_suffix(".yaml")
        yaml_path.write_text(text([path]))
        out = path.with_suffix(".h5")
        argv = _histmaker(yaml_path, out, inp.corrections)
        cases.append(Case(kind, name, argv, [str(path)], compare="single", out=str(out)))
        if k % 12 == 5:  # a few again with --skip-bad-files, beside the intact file
            yaml_path = path.with_name(path.stem + "-skip.yaml")
            yaml_path.write_text(text([inp.root, path]))
            out = path.with_name(path.stem + "-skip.h5")
            argv = [*_histmaker(yaml_path, out, inp.corrections), "--skip-bad-files"]
            cases.append(
                Case(
                    f"{kind} (skip)",
                    name,
                    argv,
                    [str(path)],
                    compare="pair",
                    skip=True,
                    bad=str(path),
                    out=str(out),
                )
            )
    return cases


def _histmaker(yaml_path: Path, out: Path, corrections: Path) -> list[str]:
    return histmaker_argv(
        yaml_path, out, executor="iterative", chunksize=1_000_000, corrections=corrections
    )


def _text_mutations(text: str, rng: random.Random, n_trunc: int, n_flip: int) -> list:
    data = text.encode()
    out = []
    for off in sorted(rng.sample(range(1, len(data)), min(n_trunc, len(data) - 1))):
        out.append(("truncated", f"at {off}", data[:off]))
    for _ in range(n_flip):
        off = rng.randrange(len(data))
        out.append(("byte flip", f"byte {off}", flip(data, off, rng)))
    return out


def config_cases(inp: Inputs, work: Path, rng: random.Random) -> list[Case]:
    """>= 100 corrupted configurations: datasets.yaml, cluster YAML, corrections, workspaces,
    fit inputs."""
    import h5py
    import yaml

    d = work / "config"
    d.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    good_yaml = inp.datasets_text.replace("FILE", str(inp.root))
    n = [0]

    def path(suffix: str) -> Path:
        n[0] += 1
        return d / f"{n[0]:03d}{suffix}"

    # datasets.yaml
    def datasets_case(kind: str, name: str, data: bytes, *, accepted: bool = True) -> None:
        p = path(".yaml")
        p.write_bytes(data)
        out = p.with_suffix(".h5")
        argv = _histmaker(p, out, inp.corrections)
        # the error names the YAML, or the file it lists that is bad ("bad input file PATH")
        names = [str(p), "bad input file /"]
        kind = f"datasets.yaml {kind}"
        cases.append(Case(kind, name, argv, names, out=str(out), accepted_if_ok=accepted))

    for kind, name, data in _text_mutations(good_yaml, rng, 12, 12):
        datasets_case(kind, name, data)
    doc = yaml.safe_load(good_yaml)
    ds = doc["datasets"]["wmunu"]
    structural = {
        "empty file": "",
        "a list": "- a\n- b\n",
        "no datasets": "lumi_pb: 1.0\n",
        "datasets empty": "datasets: {}\n",
        "dataset a list": yaml.safe_dump({"datasets": {"wmunu": [1, 2]}}),
        "files a number": yaml.safe_dump({"datasets": {"wmunu": {**ds, "files": 3}}}),
        "files empty": yaml.safe_dump({"datasets": {"wmunu": {**ds, "files": []}}}),
        "file missing": yaml.safe_dump(
            {"datasets": {"wmunu": {**ds, "files": ["/nonexistent.root"]}}}
        ),
        "file a directory": yaml.safe_dump({"datasets": {"wmunu": {**ds, "files": [str(d)]}}}),
        "xsec a string": yaml.safe_dump({"datasets": {"wmunu": {**ds, "xsec_pb": "abc"}}}),
        "xsec negative": yaml.safe_dump({"datasets": {"wmunu": {**ds, "xsec_pb": -1.0}}}),
        "is_data a string": yaml.safe_dump({"datasets": {"wmunu": {**ds, "is_data": "maybe"}}}),
        "sumw a string": yaml.safe_dump({"datasets": {"wmunu": {**ds, "sumw": "x"}}}),
        "sumw zero": yaml.safe_dump({"datasets": {"wmunu": {**ds, "sumw": 0.0}}}),
        "unknown key": yaml.safe_dump({"datasets": {"wmunu": {**ds, "xsec": 1.0}}}),
        "unknown top key": yaml.safe_dump({"dataset": {"wmunu": ds}}),
        "lumi a string": yaml.safe_dump({"lumi_pb": "x", "datasets": {"wmunu": ds}}),
        "lumi_csv missing": yaml.safe_dump(
            {"datasets": {"wmunu": {**ds, "is_data": True, "lumi_csv": "/no.csv"}}}
        ),
        "python tag": "datasets: !!python/object/apply:os.system ['touch /tmp/wmass-fuzz-pwned']\n",
        "alias bomb": "a: &a [x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, c in zip("abcdefg", "bcdefgh", strict=True)
        )
        + "datasets: *h\n",
        "tabs": good_yaml.replace("    ", "\t"),
        "deep nesting": "datasets: " + "[" * 5000 + "]" * 5000 + "\n",
        "process a mapping": yaml.safe_dump({"datasets": {"wmunu": {**ds, "process": {"a": 1}}}}),
        "dataset name empty": yaml.safe_dump({"datasets": {"": ds}}),
    }
    for name, text_ in structural.items():
        datasets_case("mistake", name, text_.encode(), accepted=True)
    datasets_case("encoding", "not UTF-8", b"datasets:\n  \xff\xfe: {}\n")
    datasets_case("encoding", "NUL bytes", good_yaml.encode().replace(b"wmunu", b"wm\x00nu"))

    # the cluster YAML: a spec that is still valid would start batch jobs; those are listed as
    # accepted after checking the spec, only the refused ones run through the command line
    from analysis.runner.cluster import load_cluster_spec
    from processors.errors import ConfigError

    cluster_text = inp.cluster_yaml.read_text()
    muts = _text_mutations(cluster_text, rng, 8, 10)
    cdoc = yaml.safe_load(cluster_text)
    for name, value in {
        "kind unknown": {**cdoc, "kind": "pbs2"},
        "jobs zero": {**cdoc, "jobs": 0},
        "jobs a string": {**cdoc, "jobs": "two"},
        "cluster a list": {**cdoc, "cluster": [1]},
        "unknown key": {**cdoc, "worker": 1},
        "scheduler_host empty": {**cdoc, "scheduler_host": ""},
        "a list": [1, 2],
    }.items():
        muts.append(("mistake", name, yaml.safe_dump(value).encode()))
    muts.append(("mistake", "python tag", b"kind: !!python/name:os.system\n"))
    muts.append(("encoding", "not UTF-8", cluster_text.encode().replace(b"slurm", b"sl\xffrm", 1)))
    for kind, name, data in muts:
        p = path(".yaml")
        p.write_bytes(data)
        out = p.with_suffix(".h5")
        yaml_path = path(".yaml")
        yaml_path.write_text(good_yaml)
        argv = [*_histmaker(yaml_path, out, inp.corrections), "--cluster", str(p)]
        argv.remove("--executor")
        argv.remove("iterative")
        case = Case(f"cluster YAML {kind}", name, argv, [str(p)], accepted_if_ok=True)
        try:
            load_cluster_spec(p)
        except ConfigError:
            cases.append(case)
            continue
        except Exception:  # noqa: BLE001 - the command line shows what the user would see
            cases.append(case)
            continue
        case.argv = []  # valid: it would submit batch jobs
        cases.append(case)

    # the correctionlib JSON
    corr_text = inp.corrections.read_text()
    cdoc = json.loads(corr_text)
    corr_muts = _text_mutations(corr_text, rng, 8, 8)
    names = [c["name"] for c in cdoc.get("corrections", [])]
    for cname in names[:6]:
        mut = {**cdoc, "corrections": [c for c in cdoc["corrections"] if c["name"] != cname]}
        corr_muts.append(("missing correction", cname, json.dumps(mut).encode()))
    for name, value in {
        "an empty object": {},
        "a list": [],
        "schema_version 99": {**cdoc, "schema_version": 99},
        "corrections a string": {**cdoc, "corrections": "x"},
    }.items():
        corr_muts.append(("mistake", name, json.dumps(value).encode()))
    corr_muts.append(("mistake", "deep nesting", b"[" * 100_000 + b"]" * 100_000))
    corr_muts.append(("mistake", "NaN content", corr_text.replace("1.0", "NaN", 3).encode()))
    yaml_path = path(".yaml")
    yaml_path.write_text(good_yaml)
    for kind, name, data in corr_muts:
        p = path(".json")
        p.write_bytes(data)
        out = p.with_suffix(".h5")
        argv = _histmaker(yaml_path, out, p)
        case = Case(f"corrections {kind}", name, argv, [str(p)], out=str(out), accepted_if_ok=True)
        if kind == "missing correction":
            case.silent_unless_warned = name
        cases.append(case)

    # pyhf workspaces
    ws = inp.workspace
    ws_text = json.dumps(ws, indent=1)
    ws_muts = _text_mutations(ws_text, rng, 6, 8)

    def edited(fn: Callable[[dict], None]) -> bytes:
        w = json.loads(ws_text)
        fn(w)
        return json.dumps(w).encode()

    def _set(path_: Sequence, value) -> Callable[[dict], None]:
        def fn(w: dict) -> None:
            node = w
            for p_ in path_[:-1]:
                node = node[p_]
            node[path_[-1]] = value

        return fn

    bkg = ("channels", 0, "samples", 1)
    for name, fn in {
        "no channels": lambda w: w.pop("channels"),
        "no observations": lambda w: w.pop("observations"),
        "no measurements": lambda w: w.pop("measurements"),
        "negative yield": _set((*bkg, "data", 1), -5.0),
        "NaN yield": _set((*bkg, "data", 1), float("nan")),
        "infinite observation": _set(("observations", 0, "data", 0), float("inf")),
        "bins mismatch": _set((*bkg, "data"), [1.0, 2.0]),
        "unknown modifier type": _set((*bkg, "modifiers", 0, "type"), "magicsys"),
        "poi not in model": _set(("measurements", 0, "config", "poi"), "nu"),
        "yields strings": _set((*bkg, "data"), ["a", "b", "c"]),
        "normsys without hi": _set((*bkg, "modifiers", 0, "data"), {"lo": 0.9}),
        "staterror wrong length": _set((*bkg, "modifiers", 1, "data"), [1.0]),
        "observation of another channel": _set(("observations", 0, "name"), "cr"),
        "empty samples": _set(("channels", 0, "samples"), []),
        "version 2": _set(("version",), "2.0.0"),
    }.items():
        ws_muts.append(("mistake", name, edited(fn)))
    ws_muts.append(("mistake", "deep nesting", b'{"a":' * 50_000 + b"1" + b"}" * 50_000))
    ws_muts.append(("mistake", "empty file", b""))
    for kind, name, data in ws_muts:
        p = path(".json")
        p.write_bytes(data)
        argv = ["fit", str(p), "--out", str(p.with_suffix(".h5"))]
        cases.append(Case(f"workspace {kind}", name, argv, [str(p)], accepted_if_ok=True))

    # fitinput.h5
    fi = inp.fitinput.read_bytes()
    fi_muts: list[tuple[str, str, bytes | Callable]] = []
    for off in sorted(rng.sample(range(1, len(fi)), 8)):
        fi_muts.append(("truncated", f"at {off}", fi[:off]))
    for _ in range(10):
        off = rng.randrange(len(fi))
        fi_muts.append(("byte flip", f"byte {off}", flip(fi, off, rng)))
    with h5py.File(inp.fitinput, "r") as f:
        top = sorted(f.keys())
        datasets_ = []
        f.visititems(lambda n, o: datasets_.append(n) if isinstance(o, h5py.Dataset) else None)
    for key in top:
        fi_muts.append(("mistake", f"without /{key}", lambda f, k=key: f.__delitem__(k)))
    for key in datasets_[:8]:

        def nan(f, k=key):
            data = f[k][()]
            if np.asarray(data).dtype.kind == "f" and np.size(data):
                f[k][...] = np.nan
            else:
                del f[k]
                f[k] = np.zeros(3)

        fi_muts.append(("mistake", f"NaN or reshaped {key}", nan))
    fi_muts.append(
        ("mistake", "kind fitresult", lambda f: f.attrs.__setitem__("kind", "fitresult"))
    )
    fi_muts.append(("mistake", "no kind", lambda f: f.attrs.__delitem__("kind")))
    fi_muts.append(("mistake", "not HDF5", b"hello"))
    for kind, name, mut in fi_muts:
        p = path(".h5")
        if isinstance(mut, bytes):
            p.write_bytes(mut)
        else:
            shutil.copyfile(inp.fitinput, p)
            with h5py.File(p, "r+") as f:
                mut(f)
        out = p.with_name(p.stem + "-result.h5")
        argv = ["fit", str(p), "--out", str(out)]
        compare = "fit" if kind == "byte flip" else None  # the mistakes change it on purpose
        cases.append(
            Case(
                f"fitinput.h5 {kind}",
                name,
                argv,
                [str(p)],
                compare=compare,
                out=str(out),
                accepted_if_ok=True,
            )
        )
    return cases


# -- the campaign -----------------------------------------------------------------------------


def child_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def prepare(work: Path, server: Server, *, seed: int = 1) -> tuple[Inputs, list[Case]]:
    """Make the inputs, the reference outputs (intact file; intact file twice) and the cases."""
    rng = random.Random(seed)
    inp = make_inputs(work / "inputs")
    for label, files in (("single", [inp.root]), ("pair", [inp.root, work / "copy.root"])):
        shutil.copyfile(inp.root, work / "copy.root")
        yaml_path = work / f"ref-{label}.yaml"
        lines = "".join(f"    - {f}\n" for f in files)
        yaml_path.write_text(inp.datasets_text.replace("    - FILE\n", lines))
        out = work / f"ref-{label}.h5"
        answer = server.run(_histmaker(yaml_path, out, inp.corrections), timeout=900)
        if answer.get("rc") != 0:
            raise RuntimeError(f"the reference run failed: {answer}")
        inp.refs[label] = str(out)
    # the fit path once, so its compilation is not charged to the first case
    answer = server.run(["fit", str(inp.fitinput), "--out", str(work / "ref-fit.h5")], 900)
    if answer.get("rc") != 0:
        raise RuntimeError(f"the reference fit failed: {answer}")
    inp.refs["fit"] = str(work / "ref-fit.h5")
    cases = root_cases(inp, work, rng) + config_cases(inp, work, rng)
    return inp, cases


def run_cases(
    cases: Sequence[Case], server: Server, refs: dict[str, str], timeout: float = 60.0
) -> list[Result]:
    results = []
    for case in cases:
        if not case.argv:
            results.append(Result(case, "accepted", "valid spec: not started"))
            continue
        results.append(judge(case, server.run(case.argv, timeout), refs))
    return results


def print_tables(results: Sequence[Result], file=sys.stdout) -> None:
    """Case kinds x outcomes, then every case that is not a good outcome."""
    outcomes = [
        o
        for o in (
            *GOOD,
            "TRACEBACK",
            "HANG",
            "CRASH",
            "UNNAMED",
            "DIFFERENT",
            "SILENT",
            "UNEXPECTED",
        )
    ]
    by_kind: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        by_kind[r.case.kind][r.outcome] += 1
    used = [o for o in outcomes if any(c[o] for c in by_kind.values())]
    width = max(len(k) for k in by_kind) + 2
    print(
        f"{'case kind':<{width}}" + "".join(f"{o:>13}" for o in used) + f"{'total':>7}", file=file
    )
    for kind, c in by_kind.items():
        row = "".join(f"{c[o] or '':>13}" for o in used)
        print(f"{kind:<{width}}{row}{sum(c.values()):>7}", file=file)
    total = Counter(r.outcome for r in results)
    print(
        f"{'all':<{width}}" + "".join(f"{total[o]:>13}" for o in used) + f"{len(results):>7}",
        file=file,
    )
    bad = [r for r in results if r.outcome not in GOOD]
    if bad:
        print(f"\n{len(bad)} failures:", file=file)
        for r in bad:
            print(f"  {r.case.kind}, {r.case.name}: {r.outcome}: {r.detail}", file=file)
    slowest = max(results, key=lambda r: r.seconds)
    print(
        f"\nslowest case {slowest.seconds:.1f} s ({slowest.case.kind}, {slowest.case.name})",
        file=file,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=int, default=1, help="run every N-th case")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="kept; default: a temp dir")
    parser.add_argument("--only", default="", help="only case kinds containing this text")
    parser.add_argument("--verbose", action="store_true", help="print every case")
    args = parser.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="wmass-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    server = Server(child_env(work / "pycache"))
    try:
        inp, cases = prepare(work, server, seed=args.seed)
        cases = [c for c in cases if args.only in c.kind][:: args.every]
        n_root = sum(1 for c in cases if c.kind.split(" (")[0] in ROOT_KINDS)
        print(f"{len(cases)} cases ({n_root} ROOT files, {len(cases) - n_root} configurations)")
        results = run_cases(cases, server, inp.refs, timeout=args.timeout)
    finally:
        server.close()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print()
    if args.verbose:
        for r in results:
            print(f"  {r.case.kind}, {r.case.name}: {r.outcome}: {r.detail[:150]}")
    print_tables(results)
    print(f"\n{len(results)} cases in {time.monotonic() - t0:.0f} s")
    if os.path.exists("/tmp/wmass-fuzz-pwned"):
        print("a YAML tag ran a command: /tmp/wmass-fuzz-pwned exists")
        return 1
    return 0 if all(r.outcome in GOOD for r in results) else 1


ROOT_KINDS = (
    "truncated",
    "header flip",
    "directory flip",
    "streamer flip",
    "basket header flip",
    "basket payload flip",
    "empty",
    "garbage",
    "wrong tree",
    "missing branch",
    "mistyped branch",
    "rewritten (control)",
)

if __name__ == "__main__":
    sys.exit(main())
