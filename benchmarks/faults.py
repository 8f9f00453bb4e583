"""Fault campaign: ``wmass histmaker`` killed, its workers killed, its disk full -- and still
either the histograms of an uninterrupted run or a named error with the previous output intact.

Three kinds of trials on a small generated sample (W -> mu nu, two files, chunks of 250 events,
the pileup variation), all on one Dask cluster started from the command line (``dask
scheduler`` and ``dask worker`` processes on 127.0.0.1) that stays warm between trials:

- ``driver-kill``: ``wmass histmaker --scheduler ... --checkpoint-interval 0.3`` is SIGKILLed at
  a random moment of its run (even trials: uniform over the duration of an uninterrupted run,
  start-up included; odd trials: uniform over the part where chunks are processed, from the
  first checkpoint of an uninterrupted run to its end); then
  ``wmass histmaker --resume`` runs to its end. The state at the kill is recorded (no
  checkpoint yet, a checkpoint with k of N chunks, the output already written).
- ``worker-kill``: a random worker of the cluster is SIGKILLed at a random moment of a run
  (drawn as for the driver);
  the run must finish by itself (the chunks of the lost worker are redone). A replacement
  worker is started after each trial.
- ``disk-full``: the driver runs with a file-size limit (``RLIMIT_FSIZE``, SIGXFSZ ignored so a
  write fails with ``EFBIG`` as on a full disk) at a random size between 0 and 1.5 x the
  output's, the checkpoints on or off; the output path holds the previous output (the
  reference file), which must be untouched if the run fails.

Outcomes: ``identical`` (every histogram's values and variances, the chunks, events, sum of
weights and lumisections equal those of the uninterrupted reference run, to 1e-12 relative:
the summation order differs), ``named error`` (exit code 1, a ``wmass histmaker: error:``
line, no ``Traceback`` on stderr, and the previous output byte for byte what it was, no
temporary file left), or a failure: ``DIFFERENT``, ``TRACEBACK``, ``CRASH`` (killed by a
signal), ``HANG`` (over the time bound), ``CLOBBERED`` (previous output changed).

    python benchmarks/faults.py                 # 20 trials per kind
    python benchmarks/faults.py --trials 5 --kinds driver-kill,disk-full

The subprocesses get ``PYTHONPYCACHEPREFIX`` in the campaign's temporary directory so that
each one does not recompile every imported module (the development environment sets
``PYTHONDONTWRITEBYTECODE``). ``tests/reliability/test_faults.py`` runs a few trials of each
kind with the same functions.

Why one module of ~590 lines: one campaign, its cluster of command-line processes, its
three kinds of fault and its table; ``tests/reliability/test_faults.py`` imports it whole.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# run as a script, this folder is sys.path[0], where benchmarks/fit.py would shadow the fit package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from benchmarks import _common  # noqa: E402

BIN = Path(sys.executable).parent
CHUNK = 250
KINDS = ("driver-kill", "worker-kill", "disk-full")
GOOD = ("identical", "named error")


# -- the sample and the commands --------------------------------------------------------------


def make_sample(out: Path, *, events: int = 3000, seed: int = 5) -> tuple[Path, Path]:
    """A generated sample reduced to its W -> mu nu files; ``(datasets.yaml, corrections.json)``.

    Only the simulated W keeps the runs short (the data's golden-JSON mask compiles numba code
    in every new process)."""
    import yaml

    from analysis.generate import generate_samples

    gen = generate_samples(
        out / "gen", events=events, files_per_process=2, seed=seed, batch_size=400
    )
    doc = yaml.safe_load(gen.read_text())
    entry = dict(doc["datasets"]["wmunu"])
    entry["files"] = [str(gen.parent / f) for f in entry["files"]]
    body = {"lumi_pb": doc.get("lumi_pb"), "datasets": {"wmunu": entry}}
    yaml_path = out / "datasets.yaml"
    yaml_path.write_text(yaml.safe_dump(body, sort_keys=False))
    return yaml_path, gen.parent / "corrections.json"


def child_env(cache: Path) -> dict[str, str]:
    """The environment of every subprocess: bytecode cached under ``cache``, daemonic workers
    off (a ``dask worker`` without nanny runs its tasks in threads)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    env["DASK_DISTRIBUTED__WORKER__DAEMON"] = "False"
    return env


def histmaker_argv(yaml_path: Path, corrections: Path, out: Path, *extra: str) -> list[str]:
    """``wmass histmaker`` on the sample writing ``out``."""
    return [
        str(BIN / "wmass"),
        *_common.histmaker_argv(
            yaml_path,
            out,
            chunksize=CHUNK,
            corrections=corrections,
            variations=("pileup",),
            extra=extra,
        ),
    ]


# -- a Dask cluster from the command line -----------------------------------------------------


class Cluster:
    """``dask scheduler`` and ``dask worker`` processes (one thread, no nanny) on 127.0.0.1."""

    def __init__(self, tmp: Path, env: dict[str, str], workers: int = 2) -> None:
        self.tmp, self.env = tmp, env
        self.file = tmp / "scheduler.json"
        self.workers: list[subprocess.Popen] = []
        self._n = 0
        self._logs = []
        self.scheduler = self._spawn(
            ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"],
            "scheduler",
        )
        deadline = time.monotonic() + 180
        while not self.file.exists():
            if time.monotonic() > deadline or self.scheduler.poll() is not None:
                self.close()
                raise RuntimeError((tmp / "scheduler.log").read_text())
            time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]
        for _ in range(workers):
            self.add_worker()
        self.wait_for(workers)

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115 - closed in close()
        self._logs.append(log)
        cmd = [str(BIN / "dask"), *args, "--scheduler-file", str(self.file)]
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env)

    def add_worker(self) -> None:
        """Start one more worker (it registers in the background)."""
        self._n += 1
        args = ["worker", "--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"]
        self.workers.append(self._spawn(args, f"worker{self._n}"))

    def alive(self) -> list[subprocess.Popen]:
        return [w for w in self.workers if w.poll() is None]

    def wait_for(self, n: int, timeout: float = 180) -> None:
        """Wait until ``n`` workers are connected to the scheduler."""
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(n, timeout=timeout)

    def kill_random(self, rng: random.Random) -> int:
        """SIGKILL a random live worker; its pid."""
        victim = rng.choice(self.alive())
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(30)
        return victim.pid

    def close(self) -> None:
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                p.kill()
            p.wait(30)
        for log in self._logs:
            log.close()


# -- outcomes ---------------------------------------------------------------------------------


@dataclass
class Trial:
    """One trial: its kind, the moment of the fault, the state then, the outcome."""

    kind: str
    trial: int
    moment: str
    state: str = ""
    outcome: str = ""
    identical: bool | None = None
    detail: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome in GOOD


def same_histograms(path: Path, reference: Path, rtol: float = 1e-12) -> tuple[bool, str]:
    """Every dataset's histograms (values and variances, flow bins included), chunks, events,
    lumisections and sum of weights agree; ``(equal, first difference)``."""
    from analysis.io import read_histograms

    a, b = read_histograms(path), read_histograms(reference)
    if set(a.datasets) != set(b.datasets):
        return False, f"datasets {sorted(a.datasets)} != {sorted(b.datasets)}"
    for name in a.datasets:
        x, y = a[name], b[name]
        for key in ("chunks", "lumisections", "events_read", "events_selected", "files_failed"):
            if getattr(x, key) != getattr(y, key):
                return False, f"{name}.{key}"
        if not np.isclose(x.sumw, y.sumw, rtol=rtol, atol=0):
            return False, f"{name}.sumw {x.sumw} != {y.sumw}"
        if set(x.histograms) != set(y.histograms):
            return False, f"{name}: histograms {sorted(x.histograms)} != {sorted(y.histograms)}"
        for h, hx in x.histograms.items():
            hy = y.histograms[h]
            if hx.axes != hy.axes:
                return False, f"{name}/{h}: axes"
            vx, vy = hx.view(flow=True), hy.view(flow=True)
            fields = vx.dtype.names or (None,)
            for f in fields:
                ax = vx if f is None else vx[f]
                ay = vy if f is None else vy[f]
                scale = max(float(np.abs(ay).max(initial=0.0)), 1.0)
                if not np.allclose(ax, ay, rtol=rtol, atol=rtol * scale):
                    return False, f"{name}/{h}: {f or 'values'} differ"
    return True, ""


@dataclass
class Run:
    """What a subprocess did: exit code (negative: signal), stderr, seconds, timed out."""

    returncode: int | None
    stderr: str
    seconds: float
    timed_out: bool = False


def classify(run: Run) -> tuple[str, str]:
    """The outcome of a failed run: a named error, or what went wrong; ``(outcome, detail)``."""
    last = next((ln for ln in reversed(run.stderr.strip().splitlines()) if ln.strip()), "")
    if run.timed_out:
        return "HANG", f"over {run.seconds:.0f} s"
    if "Traceback" in run.stderr:
        return "TRACEBACK", last[:160]
    if run.returncode is not None and run.returncode < 0:
        return "CRASH", f"signal {-run.returncode}"
    if 0 < (run.returncode or 0) < 126 and "wmass histmaker: error: " in run.stderr:
        return "named error", last.split("error: ", 1)[-1][:160]
    return "UNEXPECTED", f"exit {run.returncode}: {last[:160]}"


def run_cli(
    argv: Sequence[str],
    env: dict[str, str],
    timeout: float,
    preexec: Callable[[], None] | None = None,
) -> Run:
    t0 = time.monotonic()
    try:
        p = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=timeout, preexec_fn=preexec
        )
    except subprocess.TimeoutExpired as err:
        stderr = err.stderr.decode() if isinstance(err.stderr, bytes) else (err.stderr or "")
        return Run(None, stderr, time.monotonic() - t0, timed_out=True)
    return Run(p.returncode, p.stderr, time.monotonic() - t0)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob(".*.tmp"))


def _timed_run(argv: Sequence[str], env: dict[str, str], out: Path) -> tuple[float, float, int]:
    """Run to the end; ``(seconds, seconds until the first checkpoint appeared, exit code)``."""
    from analysis.runner.checkpoint import checkpoint_path

    ck = checkpoint_path(out)
    t0 = time.monotonic()
    t_ck = None
    p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while p.poll() is None:
        if t_ck is None and ck.exists():
            t_ck = time.monotonic() - t0
        time.sleep(0.02)
    total = time.monotonic() - t0
    return total, total if t_ck is None else t_ck, p.returncode


def _wait_moment(
    proc: subprocess.Popen, out: Path, rng: random.Random, k: int, t_ref: float, t_ck: float
) -> str:
    """Wait for the moment of trial ``k`` of a run started just now; ``""`` if the run ended
    first, else a description of the moment. Even trials: a time uniform over the duration of
    an uninterrupted run (start-up included). Odd trials: once the run's first checkpoint is
    there (chunks are being processed), a time uniform over the rest of an uninterrupted run;
    so both the start-up and the processing are hit, whatever the load of the machine."""
    from analysis.runner.checkpoint import checkpoint_path

    if k % 2 == 0:
        moment = rng.uniform(0.2, t_ref)
        try:
            proc.wait(moment)
            return ""
        except subprocess.TimeoutExpired:
            return f"{moment:.2f} s"
    ck, t0 = checkpoint_path(out), time.monotonic()
    while not ck.exists():
        if proc.poll() is not None:
            return ""
        time.sleep(0.01)
    delay = rng.uniform(0.0, max(0.3, t_ref - t_ck))
    try:
        proc.wait(delay)
        return ""
    except subprocess.TimeoutExpired:
        return f"1st ckpt {time.monotonic() - t0 - delay:.1f} s + {delay:.2f} s"


def _checkpoint_state(out: Path) -> str:
    from analysis.runner.checkpoint import checkpoint_path, read_checkpoint

    if out.exists():
        return "output written"
    ck = checkpoint_path(out)
    if not ck.exists():
        return "no checkpoint"
    try:
        stored = read_checkpoint(ck)
    except Exception as err:  # noqa: BLE001 - a campaign records whatever a checkpoint is
        return f"unreadable checkpoint ({type(err).__name__})"
    return f"checkpoint {len(stored.done)}/{len(stored.config['chunks'])} chunks"


# -- the campaign -----------------------------------------------------------------------------


@dataclass
class Campaign:
    """The sample, the reference output and the warm cluster every trial uses."""

    tmp: Path
    yaml_path: Path
    corrections: Path
    env: dict[str, str]
    cluster: Cluster
    reference: Path
    #: seconds of an uninterrupted run, and until its first checkpoint (processing begins)
    t_ref: float
    t_ck: float
    rng: random.Random = field(default_factory=lambda: random.Random(1))

    @classmethod
    def start(
        cls, tmp: Path, *, seed: int = 1, workers: int = 2, reproducible: bool = True
    ) -> Campaign:
        """Generate the sample, start the cluster, run the reference. With ``reproducible``
        a second uninterrupted run is timed (the span of the random moments) and compared;
        without, the moments span 60 % of the reference run (which includes the warm-up), the
        processing its last 40 % of that."""
        tmp.mkdir(parents=True, exist_ok=True)
        yaml_path, corrections = make_sample(tmp)
        env = child_env(tmp / "pycache")
        # fill the bytecode cache once, in parallel with the cluster's start
        warm = subprocess.Popen(
            [str(BIN / "python"), "-c", "import analysis.histmaker, analysis.runner.execute"],
            env=env,
        )
        cluster = Cluster(tmp, env, workers=workers)
        warm.wait(600)
        # the reference run also warms the workers up (imports, numba); a second, timed run
        # sets the span of the random moments and shows the run is reproducible at all
        reference = tmp / "reference.h5"
        argv = histmaker_argv(yaml_path, corrections, reference, "--scheduler", cluster.address)
        run = run_cli(argv, env, timeout=900)
        if run.returncode != 0:
            cluster.close()
            raise RuntimeError(f"the reference run failed:\n{run.stderr}")
        t_ref, t_ck = 0.6 * run.seconds, 0.4 * run.seconds
        if reproducible:
            again = tmp / "again.h5"
            extra = ("--scheduler", cluster.address, "--checkpoint-interval", "0.3")
            argv = histmaker_argv(yaml_path, corrections, again, *extra)
            t_ref, t_ck, rc = _timed_run(argv, env, again)
            same, why = same_histograms(again, reference) if rc == 0 else (False, f"exit {rc}")
            if not same:
                cluster.close()
                raise RuntimeError(f"two uninterrupted runs differ: {why}")
        return cls(
            tmp, yaml_path, corrections, env, cluster, reference, t_ref, t_ck, random.Random(seed)
        )

    def close(self) -> None:
        self.cluster.close()

    @property
    def timeout(self) -> float:
        return 10 * self.t_ref + 120

    def _dir(self, kind: str, k: int) -> Path:
        d = self.tmp / f"{kind}-{k}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        return d

    def _finish(self, trial: Trial, run: Run, out: Path) -> Trial:
        trial.seconds = run.seconds
        if run.returncode == 0 and not run.timed_out:
            same, why = same_histograms(out, self.reference)
            trial.identical = same
            trial.outcome = "identical" if same else "DIFFERENT"
            trial.detail = why
        else:
            trial.outcome, trial.detail = classify(run)
        return trial

    def _start(self, kind: str, k: int) -> tuple[Path, Trial, list[str]]:
        """Trial ``k`` of a kill: its directory, its record, the command of its driver."""
        d = self._dir(kind, k)
        extra = ("--scheduler", self.cluster.address, "--checkpoint-interval", "0.3")
        argv = histmaker_argv(self.yaml_path, self.corrections, d / "hists.h5", *extra)
        return d, Trial(kind, k, ""), argv

    def _kill_now(self, trial: Trial, driver: subprocess.Popen, out: Path) -> bool:
        """Wait for the random moment of ``trial``; False (and that said) if the driver
        finished before it."""
        moment = _wait_moment(driver, out, self.rng, trial.trial, self.t_ref, self.t_ck)
        trial.moment = moment or "-"
        if not moment:
            trial.state = "finished before the kill"
        return bool(moment)

    def driver_kill(self, k: int) -> Trial:
        """SIGKILL the driver at a random moment, then ``--resume`` to the end."""
        d, trial, argv = self._start("driver-kill", k)
        out = d / "hists.h5"
        driver = subprocess.Popen(
            argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if self._kill_now(trial, driver, out):
            os.kill(driver.pid, signal.SIGKILL)
            driver.wait(60)
            trial.state = _checkpoint_state(out)
        run = run_cli([*argv, "--resume"], self.env, self.timeout)
        self._finish(trial, run, out)
        if trial.outcome == "identical" and _leftovers(d):
            trial.outcome, trial.detail = "LEFTOVER", ", ".join(_leftovers(d))
        return trial

    def worker_kill(self, k: int) -> Trial:
        """SIGKILL a random worker at a random moment; the run must still finish right."""
        d, trial, argv = self._start("worker-kill", k)
        out = d / "hists.h5"
        t0 = time.monotonic()
        with open(d / "stderr", "w+") as err:
            driver = subprocess.Popen(argv, env=self.env, stdout=subprocess.DEVNULL, stderr=err)
            if self._kill_now(trial, driver, out):
                pid = self.cluster.kill_random(self.rng)
                trial.state = f"killed worker pid {pid}"
                self.cluster.add_worker()
            timed_out = False
            try:
                driver.wait(self.timeout)
            except subprocess.TimeoutExpired:
                driver.kill()
                driver.wait(30)
                timed_out = True
            err.seek(0)
            run = Run(driver.returncode, err.read(), time.monotonic() - t0, timed_out)
        return self._finish(trial, run, out)

    def disk_full(
        self, k: int, *, limit: int | None = None, checkpoints: bool | None = None
    ) -> Trial:
        """The driver under a file-size limit; the previous output at ``--out`` must survive a
        failure unchanged. ``limit`` (bytes) and ``checkpoints`` are random unless given."""
        d = self._dir("disk-full", k)
        out = d / "hists.h5"
        shutil.copyfile(self.reference, out)  # the previous output
        before = out.read_bytes()
        size = len(before)
        limit = int(self.rng.uniform(0, 1.5 * size)) if limit is None else limit
        checkpoints = self.rng.random() < 0.5 if checkpoints is None else checkpoints
        interval = "0.3" if checkpoints else "100000"
        trial = Trial(
            "disk-full",
            k,
            f"limit {limit / size:.2f} x output",
            state="checkpoints every 0.3 s" if checkpoints else "no checkpoint",
        )
        extra = ("--scheduler", self.cluster.address, "--checkpoint-interval", interval)
        argv = histmaker_argv(self.yaml_path, self.corrections, out, *extra)

        def _limit() -> None:  # in the child: a write past the limit fails with EFBIG
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        run = run_cli(argv, self.env, self.timeout, preexec=_limit)
        self._finish(trial, run, out)
        if run.returncode != 0 and not run.timed_out:
            intact = out.exists() and out.read_bytes() == before
            if not intact and trial.outcome == "named error":
                trial.outcome, trial.detail = "CLOBBERED", "the previous output changed"
            trial.identical = intact if trial.identical is None else trial.identical
        if trial.ok and _leftovers(d):
            trial.outcome, trial.detail = "LEFTOVER", ", ".join(_leftovers(d))
        return trial


def print_table(trials: Sequence[Trial], file=sys.stdout) -> None:
    """The trials, one a line, and a summary of outcomes per kind."""
    head = f"{'kind':<12} {'#':>3} {'moment':<26} {'state':<28} {'outcome':<12} {'same':<5} s"
    print(head, file=file)
    print("-" * len(head), file=file)
    for t in trials:
        same = "-" if t.identical is None else ("yes" if t.identical else "NO")
        print(
            f"{t.kind:<12} {t.trial:>3} {t.moment:<26} {t.state[:28]:<28} {t.outcome:<12} "
            f"{same:<5} {t.seconds:5.1f}  {t.detail[:90]}",
            file=file,
        )
    print(file=file)
    print("summary (same: identical histograms, or the previous output intact)", file=file)
    for kind in dict.fromkeys(t.kind for t in trials):
        counts = Counter(t.outcome for t in trials if t.kind == kind)
        bad = sum(n for o, n in counts.items() if o not in GOOD)
        text = ", ".join(f"{o} {n}" for o, n in counts.most_common())
        print(f"  {kind:<12} {sum(counts.values()):>3} trials: {text}; failures {bad}", file=file)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per kind")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="kept; default: a temp dir")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    tmp = args.workdir or Path(tempfile.mkdtemp(prefix="wmass-faults-"))
    t0 = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the cluster is closed
    campaign = Campaign.start(tmp, seed=args.seed)
    print(
        f"uninterrupted run: {campaign.t_ref:.1f} s, first checkpoint at {campaign.t_ck:.1f} s;"
        f" sample and cluster in {tmp}",
        flush=True,
    )
    trials: list[Trial] = []
    try:
        for kind in kinds:
            do = {
                "driver-kill": campaign.driver_kill,
                "worker-kill": campaign.worker_kill,
                "disk-full": campaign.disk_full,
            }[kind]
            for k in range(args.trials):
                t = do(k)
                trials.append(t)
                print(
                    f"  {t.kind} {t.trial}: {t.moment}, {t.state}: {t.outcome} {t.detail[:80]}",
                    flush=True,
                )
                if kind == "worker-kill":
                    campaign.cluster.wait_for(2)
    finally:
        campaign.close()
        if args.workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print_table(trials)
    print(f"\n{len(trials)} trials in {time.monotonic() - t0:.0f} s")
    return 0 if all(t.ok for t in trials) else 1


if __name__ == "__main__":
    sys.exit(main())
