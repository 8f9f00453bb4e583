"""Event-loop throughput of the W histmaker against the alternatives, on the same files.

Rows (one process, events per CPU-second, full passes over the same ZSTD files with 100k-event
baskets; the rows are interleaved over ``--rounds`` and the median is shown):

- ``plain uproot read``: ``uproot`` reading exactly the branches our W processor reads (the
  ceiling: no analysis at all);
- ``ours, all variations``: ``WMassProcessor`` with corrections and every variation
  (~770 per bin) through ``analysis.runner.run`` (iterative executor, coffea WorkItems, NanoEvents);
- ``ours, theory variations``: the same with pdf + qcdScale + massWeight (133);
- ``naive hist, all variations`` / ``theory variations``: the same selection and weights,
  then one ``hist.fill`` per variation (773 or 133 fills of the 6D histogram per chunk; a
  weight array per eigenvector, the observables again per momentum-scale block);
- ``coffea dask idiom, theory variations``: ``NanoEventsFactory(mode="dask")``, the selection in
  dask-awkward, one ``hist.dask`` fill per variation, computed with dask's synchronous
  scheduler;
- ``ROOT RDataFrame THnD``: the same 5D + variation fill with RDataFrame, when the ``root``
  wheel imports (else "not installed").

Peak RSS (``ru_maxrss`` of a fresh subprocess per measurement) and ratios to the plain read
and to the coffea idiom are printed; ``/plain, per round`` pairs each round's rate with the
plain read's of the same round, which cancels the machine's slow spells (rates move by tens of
per cent from process to process here). The input is made from a small ``analysis.generate`` sample
whose W events are tiled to ``--events``.

    python benchmarks/histmaker.py --events 300000 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# run as a script, this folder is sys.path[0], where benchmarks/fit.py would shadow the fit package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

BASKET = 100_000
MEMORY_LIMIT = 12 << 30  # address space of one measured process
THEORY = ("pdf", "qcdScale", "massWeight")


# -- input -----------------------------------------------------------------------------------


def make_input(out: Path, events: int, seed: int = 1) -> tuple[Path, Path]:
    """A W file of ``events`` events (ZSTD 5, 100k baskets) and its corrections.json."""
    import awkward as ak
    import uproot

    from analysis.generate import generate_samples

    target = out / f"wmunu_{events}.root"
    corr = out / "gen" / "corrections.json"
    if target.exists() and corr.exists():
        return target, corr
    yaml_path = generate_samples(out / "gen", events=30_000, seed=seed, files_per_process=1)
    src = yaml_path.parent / "wmunu" / "nano_0.root"
    arrays = uproot.open(src)["Events"].arrays()
    n = len(arrays)
    with uproot.recreate(target, compression=uproot.ZSTD(5)) as f:
        tree = None
        done = 0
        while done < events:
            k = min(BASKET, events - done)
            idx = (np.arange(done, done + k) % n).astype(np.int64)
            part = arrays[idx]
            branches = {}
            for field in part.fields:
                branches[field] = part[field]
            branches = _to_branches(branches, ak)
            if tree is None:
                tree = f.mktree(
                    "Events",
                    {
                        k2: (v.type.content if isinstance(v, ak.Array) else v.dtype)
                        for k2, v in branches.items()
                    },
                )
            tree.extend(branches)
            done += k
    return target, corr


def _to_branches(fields: dict, ak) -> dict:
    """Flat NanoAOD-named arrays -> uproot's ``{name: array or record of jagged}`` for mktree."""
    out: dict = {}
    groups: dict[str, dict] = {}
    for name, arr in fields.items():
        if name.startswith("n") and name[1:2].isupper():
            continue  # counters are written by uproot from the collections
        prefix, _, rest = name.partition("_")
        if rest and arr.ndim > 1 and not name.endswith("Weight"):
            groups.setdefault(prefix, {})[rest] = arr
        elif arr.ndim > 1:
            out[name] = arr
        else:
            out[name] = ak.to_numpy(arr)
    for prefix, cols in groups.items():
        out[prefix] = ak.zip(cols)
    return out


# -- the measured approaches (each runs in a fresh subprocess) -----------------------------------


def _branches_read(path: Path, corr: Path) -> list[str]:
    """The branches the W processor actually reads (NanoEvents' access log)."""
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    from processors import WMassProcessor

    log: list = []
    events = NanoEventsFactory.from_root(
        {str(path): "Events"},
        schemaclass=NanoAODSchema,
        mode="virtual",
        access_log=log,
        entry_stop=2000,
        metadata={"dataset": "w", "is_data": False, "filename": str(path)},
    ).events()
    WMassProcessor(corrections=str(corr)).process(events)
    names = sorted({getattr(x, "branch", None) or str(x) for x in log})
    return [n for n in names if n]


def run_plain(path: Path, corr: Path) -> int:
    import uproot

    branches = _branches_read(path, corr)
    n = 0
    for arrays in uproot.iterate({str(path): "Events"}, branches, step_size=BASKET, library="ak"):
        n += len(arrays)
    return n


def run_ours(path: Path, corr: Path, variations) -> int:
    from analysis.datasets import Dataset
    from analysis.runner.run import run
    from processors import WMassProcessor

    ds = Dataset("w", "Wmunu", (str(path),), False, 1.0, None, None, None, None)
    proc = WMassProcessor(
        {"w": ds}, corrections=str(corr), variations=variations, hist_output=False
    )
    result = run(proc, {"w": ds}, executor="iterative", chunksize=BASKET, progress=False)
    return result.events


def _block_weights(weight, offsets, group, ratio, n_var):
    """Per variation ``v = g * n_local + k`` of a block systematic: each event's weight times
    the ratios ``ratio[o, k]`` of its objects ``o`` in block ``g`` -- written as a newcomer
    would, one numpy pass per variation."""
    n_local = ratio.shape[1]
    event_of = np.repeat(np.arange(len(weight)), np.diff(offsets))
    for v in range(n_var):
        g, k = divmod(v, n_local)
        factor = np.ones(len(weight))
        np.multiply.at(factor, event_of, np.where(group == g, ratio[:, k], 1.0))
        yield v, weight * factor


def hist_fill_processor(datasets: dict, corrections: str, variations=THEORY):
    """Our selection and weights, then one ``hist.fill`` per variation: the processor a coffea
    user writes (``hist.Hist`` accumulators). Also run by ``benchmarks/scaling.py`` under
    coffea's ``Runner``, where it is the like-for-like processor for the executors.
    ``variations``: names (as ``WMassProcessor``'s) or True for all: the theory and pileup
    weights, the efficiency and prefiring eigenvectors (a weight per event for each), the
    momentum-scale blocks (the observables again for each shifted pT)."""
    import hist

    from processors import WMassProcessor
    from processors.variations import THEORY as THEORY_SPECS
    from processors.variations import variation_axis

    class HistFillProcessor(WMassProcessor):
        def _fill(self, cols, sel, weight, tensors, is_data):
            axes = self.axes()
            obs = self.observables(sel, sel.pt)
            nominal = hist.Hist(*axes, storage=hist.storage.Weight())
            nominal.fill(*obs, weight=weight)
            out = {"nominal": nominal, "_selected": int(nominal.sum().value > -1) * len(sel)}

            def book(name, labels):
                out[name] = hist.Hist(
                    *axes, variation_axis(name, labels), storage=hist.storage.Double()
                )
                return out[name]

            # per-event weight ratios: the theory ones for every event read, pileup's for
            # the selected ones
            for name in [spec.name for spec in THEORY_SPECS] + ["pileup"]:
                if name not in tensors:
                    continue
                ratio, labels = tensors[name]
                ratio = np.asarray(ratio)[sel.events] if name != "pileup" else ratio
                h = book(name, labels)
                for v, label in enumerate(labels):
                    h.fill(*obs, label, weight=weight * ratio[:, v])
            k = sel.pt.shape[1]
            blocks = []
            if "effStat" in tensors:
                per_muon = np.arange(0, len(sel) * k + 1, k, dtype=np.int64)
                blocks.append(("effStat", per_muon, tensors["effStat"]))
            if "prefiringStat" in tensors:
                blocks.append(("prefiringStat", *tensors["prefiringStat"]))
            for name, offsets, b in blocks:
                labels = list(b.labels)
                h = book(name, labels)
                for v, w in _block_weights(weight, offsets, b.group, b.ratio, len(labels)):
                    h.fill(*obs, labels[v], weight=w)
            if "muonScale" in tensors:
                shifts = tensors["muonScale"]
                labels = list(shifts.labels)
                h = book("muonScale", labels)
                for v, label in enumerate(labels):
                    g, d = divmod(v, 2)
                    sign = 1.0 if d == 0 else -1.0
                    pt = np.where(
                        shifts.group == g, sel.pt * (1.0 + sign * shifts.uncertainty), sel.pt
                    )
                    h.fill(*self.observables(sel, pt), label, weight=weight)
            return out

    wanted = variations if variations is True else list(variations)
    return HistFillProcessor(datasets, corrections=corrections, variations=wanted)


def run_naive(path: Path, corr: Path, variations=THEORY) -> int:
    """Our selection and weights, then one ``hist.fill`` per variation."""
    from analysis.datasets import Dataset
    from analysis.runner.run import run

    ds = Dataset("w", "Wmunu", (str(path),), False, 1.0, None, None, None, None)
    proc = hist_fill_processor({"w": ds}, str(corr), variations)
    result = run(proc, {"w": ds}, executor="iterative", chunksize=BASKET, progress=False)
    return result.events


def coffea_dask_hists(files: dict[str, str], steps_per_file: int = 1) -> list:
    """The idiomatic coffea 202x graph: dask-awkward selection, one ``hist.dask`` fill per
    theory variation; ``files``: path -> tree name. Returns the (uncomputed) histograms."""
    import awkward as ak
    import dask_awkward as dak
    import hist
    import hist.dask as hda
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    from processors.wmass import w_axes

    events = NanoEventsFactory.from_root(
        files, schemaclass=NanoAODSchema, mode="dask", steps_per_file=steps_per_file
    ).events()
    mu = events.Muon
    good = (
        mu.tightId & (mu.pt > 15) & (abs(mu.eta) < 2.4) & (abs(mu.dxy) < 0.05) & (abs(mu.dz) < 0.2)
    )
    loose = mu.looseId & (mu.pt > 10) & (abs(mu.eta) < 2.4) & ~good
    sel = (dak.num(mu[good]) == 1) & (dak.num(mu[loose]) == 0) & events.HLT.IsoMu24
    ev = events[sel]
    m = ak.firsts(ev.Muon[good[sel]])
    mt = np.sqrt(2 * m.pt * ev.MET.pt * (1 - np.cos(m.phi - ev.MET.phi)))
    w = ev.genWeight
    obs = (m.pt, m.eta, m.charge, m.pfRelIso04_all < 0.15, mt)
    hists = []
    for branch in ("LHEPdfWeight", "LHEScaleWeight", "MEParamWeight"):
        ratio = ev[branch]
        k = {"LHEPdfWeight": 103, "LHEScaleWeight": 9, "MEParamWeight": 21}[branch]
        h = hda.Hist(*w_axes(), hist.axis.Integer(0, k, name="var"), storage="double")
        for v in range(k):
            h.fill(*obs, v, weight=w * ratio[:, v])
        hists.append(h)
    return hists


def run_coffea_dask(path: Path, corr: Path) -> int:
    """The idiomatic coffea 202x way (:func:`coffea_dask_hists`), one thread."""
    import dask
    import uproot

    n = uproot.open(path)["Events"].num_entries
    hists = coffea_dask_hists({str(path): "Events"}, steps_per_file=max(1, n // BASKET))
    with dask.config.set(scheduler="synchronous"):
        dask.compute(*hists)
    return n


def run_rdf(path: Path, corr: Path) -> int:
    """RDataFrame, one thread: the selection in C++, one 5D THnD per theory variation."""
    import ROOT

    df = ROOT.RDataFrame("Events", str(path))
    df = (
        df.Define(
            "good",
            "Muon_tightId && Muon_pt > 15 && abs(Muon_eta) < 2.4 && abs(Muon_dxy) < 0.05"
            " && abs(Muon_dz) < 0.2",
        )
        .Define("loose", "Muon_looseId && Muon_pt > 10 && abs(Muon_eta) < 2.4 && !good")
        .Filter("Sum(good) == 1 && Sum(loose) == 0 && HLT_IsoMu24")
        .Define("i", "int(ArgMax(good))")
        .Define("pt", "double(Muon_pt[i])")
        .Define("eta", "double(Muon_eta[i])")
        .Define("q", "double(Muon_charge[i])")
        .Define("iso", "double(Muon_pfRelIso04_all[i] < 0.15)")
        .Define("mt", "sqrt(2*pt*MET_pt*(1-cos(Muon_phi[i]-MET_phi)))")
    )
    nbins = ROOT.std.vector["int"]([30, 48, 2, 2, 3])
    lo = ROOT.std.vector["double"]([26.0, -2.4, -2.0, -0.5, 0.0])
    hi = ROOT.std.vector["double"]([56.0, 2.4, 2.0, 1.5, 120.0])
    cols = ["pt", "eta", "q", "iso", "mt"]
    results = []
    for branch, k in (("LHEPdfWeight", 103), ("LHEScaleWeight", 9), ("MEParamWeight", 21)):
        for v in range(k):
            name = f"w_{branch}_{v}"
            df = df.Define(name, f"double(genWeight) * {branch}[{v}]")
            model = ROOT.RDF.THnDModel(name, "", 5, nbins, lo, hi)
            results.append(df.HistoND(model, ROOT.std.vector["std::string"]([*cols, name])))
    ROOT.RDF.RunGraphs(results)
    return int(ROOT.RDataFrame("Events", str(path)).Count().GetValue())


APPROACHES = {
    "plain uproot read": lambda p, c: run_plain(p, c),
    "ours, all variations": lambda p, c: run_ours(p, c, True),
    "ours, theory variations": lambda p, c: run_ours(p, c, THEORY),
    "naive hist, all variations": lambda p, c: run_naive(p, c, True),
    "naive hist, theory variations": run_naive,
    "coffea dask idiom, theory variations": run_coffea_dask,
    "ROOT RDataFrame THnD, theory variations": run_rdf,
}


def _measure_in_subprocess(name: str, path: Path, corr: Path) -> dict:
    """Run one approach twice in a fresh process (warm-up: imports, numba, first read) and
    report the second pass's CPU time and the process's peak RSS."""
    code = (
        "import json, sys, time, resource, warnings; warnings.filterwarnings('ignore');"
        f"import importlib.util as u; s = u.spec_from_file_location('bench_histmaker', {str(Path(__file__).resolve())!r});"
        "b = u.module_from_spec(s); s.loader.exec_module(b); from pathlib import Path;"
        f"f = b.APPROACHES[{name!r}]; p, c = Path({str(path)!r}), Path({str(corr)!r});"
        "f(p, c); t = time.process_time(); w = time.perf_counter(); n = f(p, c);"
        "cpu = time.process_time() - t; wall = time.perf_counter() - w;"
        "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024;"
        "print('RESULT', json.dumps({'events': n, 'cpu': cpu, 'wall': wall, 'rss_mb': rss}))"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}

    def limit_memory() -> None:  # a runaway approach fails alone instead of filling the box
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        preexec_fn=limit_memory,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    err = proc.stderr.strip().splitlines()
    last = err[-1] if err else f"exit {proc.returncode}"
    if "No module named 'ROOT'" in proc.stderr:
        last = "not installed"
    return {"error": last}


def paired_ratios(results: dict[str, list[dict]], reference: str) -> dict[str, tuple]:
    """Per approach, its rate over ``reference``'s rate in the same round (back to back, so
    a slow spell of the machine cancels): ``(median, lowest, highest)`` over the rounds.

    >>> runs = {"plain": [{"events": 10, "cpu": 1.0}, {"events": 10, "cpu": 2.0}],
    ...         "ours": [{"events": 10, "cpu": 1.25}, {"events": 10, "cpu": 2.5}]}
    >>> paired_ratios(runs, "plain")["ours"]
    (0.8, 0.8, 0.8)
    """
    ref = results.get(reference, [])
    out = {}
    for name, runs in results.items():
        ratios = [
            (r["events"] / r["cpu"]) / (p["events"] / p["cpu"])
            for r, p in zip(runs, ref, strict=False)
            if "error" not in r and "error" not in p
        ]
        if ratios:
            out[name] = (float(np.median(ratios)), min(ratios), max(ratios))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="events in the W file")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (median)")
    parser.add_argument("--workdir", default=None, help="where the input files go (kept)")
    parser.add_argument("--only", nargs="*", default=None, help="approaches to run (substrings)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_histmaker_"))
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    path, corr = make_input(work, args.events)
    print(
        f"input: {path} ({path.stat().st_size / 1e6:.1f} MB, {args.events} events, "
        f"made in {time.perf_counter() - t:.0f} s)"
    )
    names = [n for n in APPROACHES if not args.only or any(s in n for s in args.only)]
    results: dict[str, list[dict]] = {n: [] for n in names}
    for _ in range(args.rounds):
        for name in names:
            results[name].append(_measure_in_subprocess(name, path, corr))
    rows = {}
    for name, rs in results.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            rows[name] = {"error": rs[0]["error"]}
            continue
        rate = float(np.median([r["events"] / r["cpu"] for r in ok]))
        rows[name] = {
            "rate": rate,
            "rss": max(r["rss_mb"] for r in ok),
            "wall": float(np.median([r["events"] / r["wall"] for r in ok])),
        }
    plain = rows.get("plain uproot read", {}).get("rate")
    idiom = rows.get("coffea dask idiom, theory variations", {}).get("rate")
    paired = paired_ratios(results, "plain uproot read")
    print(
        f"\n{'approach':42s} {'ev/CPU-s':>10s} {'ev/wall-s':>10s} {'peak RSS':>9s} "
        f"{'/plain':>7s} {'/plain, per round':>22s} {'/coffea':>8s}"
    )
    for name, r in rows.items():
        if "error" in r:
            print(f"{name:42s} {r['error'][:70]}")
            continue
        rp = f"{r['rate'] / plain:.2f}" if plain else "-"
        ri = f"{r['rate'] / idiom:.2f}" if idiom else "-"
        rr = paired.get(name)
        per_round = f"{rr[0]:.2f} ({rr[1]:.2f}-{rr[2]:.2f})" if rr else "-"
        print(
            f"{name:42s} {r['rate']:10,.0f} {r['wall']:10,.0f} {r['rss']:7.0f}MB {rp:>7s} "
            f"{per_round:>22s} {ri:>8s}"
        )
    print(
        "\n/plain, per round: each round's rate over the plain read's in the same round "
        "(measured back to back): median (lowest-highest) over the rounds"
    )
    print(
        f"\nload average during the run: {os.getloadavg()[0]:.1f} "
        f"(2 cores; CPU-second rates are less sensitive to load than wall rates)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
