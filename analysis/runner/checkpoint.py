"""Checkpoints of a histmaker run: what was accumulated so far, so ``--resume`` can go on.

A checkpoint is an HDF5 file next to the output (``hists.h5`` -> ``hists.h5.checkpoint``),
written atomically (temporary name, then rename) every ``--checkpoint-interval`` seconds and
removed once the output is written. Layout (``kind="checkpoint"``, ``format_version=1``)::

    /               attrs: kind, format_version, fingerprint (sha256 hex of the run's
                           configuration), config (that configuration as JSON)
    /meta           provenance (fit.provenance.write_meta)
    /done           compound (dataset, file, start, stop): the chunks merged into /accumulator
    /files_failed   vlen str: JSON {"dataset", "file", "error"} of the files given up
    /accumulator    the processor output of the done chunks, written by :func:`write_tree`:
                    a group per mapping, ``hist.Hist`` (and ``TensorFill``, as the
                    histogram it makes) in the UHI HDF5 layout
                    (:func:`analysis.io.write_hist`), numbers and strings as JSON attributes,
                    sets/lists/tuples as vlen-str datasets of JSON (never pickle)

The configuration (:func:`run_config`) is the processor and its options, every dataset, the
chunk plan (file, UUID, entry ranges), the chunk size and the code that fills (a hash of the
``processors`` and ``corrections`` sources): a checkpoint from a different configuration is
refused with :class:`CheckpointMismatch`, naming what differs.

>>> cfg = run_config({"analysis": "wmass"}, chunks=[])  # doctest: +SKIP
>>> write_checkpoint("hists.h5.checkpoint", cfg, total, done, failed, meta)  # doctest: +SKIP
>>> ck = read_checkpoint("hists.h5.checkpoint", cfg)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import h5py
import hist
import numpy as np

from analysis.io import output_errors
from analysis.runner.chunks import chunk_key
from fit.provenance import atomic_h5, read_meta
from processors.errors import BadInputFile, WMassError
from processors.fill import TensorFill

__all__ = [
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointMismatch",
    "checkpoint_path",
    "code_version",
    "fingerprint",
    "read_checkpoint",
    "read_tree",
    "run_config",
    "write_checkpoint",
    "write_tree",
]

FORMAT_VERSION = 1
_STR = h5py.string_dtype()
_CHUNK_DTYPE = np.dtype(
    [("dataset", _STR), ("file", _STR), ("start", np.int64), ("stop", np.int64)]
)


class CheckpointMismatch(WMassError):
    """A checkpoint was made by a different configuration than the run asked to resume it."""

    exit_code = 11

    def __init__(self, path: str, key: str, stored: Any, current: Any) -> None:
        self.path, self.key = str(path), key
        super().__init__(
            f"checkpoint {path} was made with a different {key} "
            f"(checkpoint: {_short(stored)}; this run: {_short(current)}); "
            "delete it to start over, or rerun with the configuration it was made with"
        )


def _short(value: Any, n: int = 120) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= n else text[: n - 3] + "..."


def checkpoint_path(out: str | os.PathLike) -> Path:
    """The checkpoint of an output file: ``hists.h5`` -> ``hists.h5.checkpoint``."""
    out = Path(out)
    return out.with_name(out.name + ".checkpoint")


# -- the configuration ---------------------------------------------------------------------------


def code_version(packages: Sequence[str] = ("processors", "corrections")) -> dict[str, str]:
    """The version of the code that fills: wmass's version and a sha256 of each package's
    Python sources (so an uncommitted edit of a processor counts too)."""
    import importlib

    out: dict[str, str] = {}
    try:
        out["wmass"] = metadata.version("wmass")
    except metadata.PackageNotFoundError:
        out["wmass"] = "unknown"
    for name in packages:
        module = importlib.import_module(name)
        root = Path(module.__file__).resolve().parent
        h = hashlib.sha256()
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
        out[name] = h.hexdigest()
    return out


def _file_digest(path: str | os.PathLike | None) -> str | None:
    if path is None or "://" in str(path) or not Path(path).is_file():
        return None if path is None else str(path)
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_config(
    options: Mapping[str, Any],
    *,
    chunks: Iterable[Any],
    datasets: Mapping[str, Any] | None = None,
    code: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What a checkpoint must agree on: ``options`` (processor, analysis, variations, chunk
    size...), the datasets (files, flags, cross sections, lumi files by content), the chunk plan
    (coffea ``WorkItem`` s: dataset, file, entry range, file UUID) and :func:`code_version`."""
    ds_cfg = {}
    for name, ds in (datasets or {}).items():
        ds_cfg[name] = {
            "files": list(ds.files),
            "is_data": bool(ds.is_data),
            "xsec_pb": ds.xsec_pb,
            "treename": ds.treename,
            "golden_json": _file_digest(ds.golden_json),
            "lumi_csv": _file_digest(ds.lumi_csv),
        }
    plan = []
    for c in chunks:
        uuid = getattr(c, "fileuuid", b"") or b""
        uuid = uuid.hex() if isinstance(uuid, bytes | bytearray) else str(uuid)
        plan.append([*chunk_key(c), uuid])
    return {
        "options": dict(options),
        "datasets": ds_cfg,
        "chunks": plan,
        "code": dict(code if code is not None else code_version()),
    }


def fingerprint(config: Mapping[str, Any]) -> str:
    """sha256 (hex) of a configuration's canonical JSON."""
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _first_difference(
    stored: Mapping[str, Any], current: Mapping[str, Any]
) -> tuple[str, Any, Any]:
    """The first key (dotted) whose value differs, with both values (the options first, the
    chunk plan last: it differs whenever anything upstream does)."""
    order = {"options": 0, "datasets": 1, "code": 2, "chunks": 3}
    for key in sorted(set(stored) | set(current), key=lambda k: (order.get(k, 1), k)):
        a, b = stored.get(key), current.get(key)
        if a == b:
            continue
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            sub, x, y = _first_difference(a, b)
            return f"{key}.{sub}", x, y
        if key == "chunks" and isinstance(a, list) and isinstance(b, list):
            return "chunk plan", f"{len(a)} chunks", f"{len(b)} chunks"
        return key, a, b
    return "configuration", "?", "?"


# -- the accumulator as an HDF5 tree -------------------------------------------------------------


def _name(key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"cannot checkpoint {where}: key {key!r} is not a string")
    return key.replace("%", "%25").replace("/", "%2F")


def _unname(name: str) -> str:
    return name.replace("%2F", "/").replace("%25", "%")


def _to_json(value: Any) -> Any:
    if isinstance(value, tuple):
        return {"t": [_to_json(v) for v in value]}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"t"}:
        return tuple(_from_json(v) for v in value["t"])
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _tensorfill(h: hist.Hist, has_variation: bool, label: str) -> TensorFill:
    """The :class:`~processors.fill.TensorFill` accumulator whose ``to_hist()`` is ``h``."""
    axes = list(h.axes)
    variation = axes.pop() if has_variation else None
    weighted = h.storage_type is hist.storage.Weight
    fill = TensorFill(axes, variation, sumw2=weighted, label=label)
    view = h.view(flow=True)
    values = view["value"] if weighted else view
    fill.sumw[...] = np.asarray(values).reshape(fill.sumw.shape)
    if weighted:
        fill.sumw2[...] = np.asarray(view["variance"]).reshape(fill.sumw2.shape)
    return fill


def write_tree(group: h5py.Group, tree: Mapping[str, Any], where: str = "output") -> None:
    """Write a processor output (nested mappings of ``hist.Hist``, the processors' raw
    ``TensorFill`` accumulators, numbers, strings, sets, lists, tuples, numpy arrays) into
    ``group``; :func:`read_tree` gives it back identical."""
    from analysis.io import write_hist

    group.attrs["_type"] = "dict"
    for key, value in tree.items():
        name = _name(key, where)
        here = f"{where}[{key!r}]"
        if isinstance(value, hist.Hist):
            sub = group.create_group(name)
            write_hist(sub, value)
            sub.attrs["_type"] = "hist"
        elif isinstance(value, TensorFill):
            sub = group.create_group(name)
            write_hist(sub, value)  # the file of its to_hist(), without the transposing copy
            sub.attrs["_type"] = "tensorfill"
            sub.attrs["has_variation"] = value.variation is not None
            sub.attrs["label"] = value.label
        elif isinstance(value, Mapping):
            write_tree(group.create_group(name), value, here)
        elif isinstance(value, set | frozenset | list | tuple):
            kind = {set: "set", frozenset: "set", list: "list", tuple: "tuple"}[type(value)]
            items = sorted(value, key=repr) if kind == "set" else list(value)
            text = [json.dumps(_to_json(v)) for v in items]
            d = group.create_dataset(name, data=np.array(text, dtype=object), dtype=_STR)
            d.attrs["_type"] = kind
        elif isinstance(value, np.ndarray):
            d = group.create_dataset(name, data=value)
            d.attrs["_type"] = "ndarray"
        elif value is None or isinstance(value, bool | int | float | str | np.generic):
            group.attrs["v:" + name] = json.dumps(_to_json(value))
        else:
            raise TypeError(f"cannot checkpoint {here}: {type(value).__name__}")


def read_tree(group: h5py.Group) -> dict[str, Any]:
    """Read back what :func:`write_tree` wrote."""
    from analysis.io import read_hist

    out: dict[str, Any] = {}
    for key, value in group.attrs.items():
        if key.startswith("v:"):
            out[_unname(key[2:])] = _from_json(json.loads(value))
    for name, node in group.items():
        kind = node.attrs.get("_type")
        if isinstance(kind, bytes):
            kind = kind.decode()
        if kind == "hist":
            out[_unname(name)] = read_hist(node)
        elif kind == "tensorfill":
            out[_unname(name)] = _tensorfill(
                read_hist(node), bool(node.attrs["has_variation"]), _text(node.attrs["label"])
            )
        elif kind == "dict":
            out[_unname(name)] = read_tree(node)
        elif kind in ("set", "list", "tuple"):
            items = [
                _from_json(json.loads(v.decode() if isinstance(v, bytes) else v)) for v in node[()]
            ]
            out[_unname(name)] = {"set": set, "list": list, "tuple": tuple}[kind](items)
        elif kind == "ndarray":
            out[_unname(name)] = node[()]
    return out


# -- the file ------------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """A checkpoint read back: the merged output, the chunks in it, the files given up."""

    path: str
    config: dict[str, Any]
    total: dict[str, Any]
    done: list[tuple[str, str, int, int]]
    files_failed: dict[str, dict[str, str]]
    meta: dict[str, Any]


def write_checkpoint(
    path: str | os.PathLike,
    config: Mapping[str, Any],
    total: Mapping[str, Any],
    done: Iterable[tuple[str, str, int, int]],
    files_failed: Mapping[str, Mapping[str, str]],
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (layout in the module docstring); a write that fails (disk
    full, file-size limit) is an :class:`~processors.errors.OutputError` naming the file, and
    the previous checkpoint stays as it was."""
    path = Path(path)
    with output_errors(path), atomic_h5(path, meta, in_memory=True) as f:
        f.attrs["kind"] = "checkpoint"
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["fingerprint"] = fingerprint(config)
        f.attrs["config"] = json.dumps(config, sort_keys=True, default=str)
        rows = sorted((str(d), str(fn), int(a), int(b)) for d, fn, a, b in done)
        f.create_dataset("done", data=np.array(rows, dtype=_CHUNK_DTYPE), dtype=_CHUNK_DTYPE)
        failed = [
            json.dumps({"dataset": d, "file": fn, "error": err}, sort_keys=True)
            for d, files in sorted(files_failed.items())
            for fn, err in sorted(files.items())
        ]
        f.create_dataset("files_failed", data=np.array(failed, dtype=object), dtype=_STR)
        write_tree(f.create_group("accumulator"), total)
    return path


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_checkpoint(path: str | os.PathLike, config: Mapping[str, Any] | None = None) -> Checkpoint:
    """Read a checkpoint; with ``config``, refuse (:class:`CheckpointMismatch`) one made by a
    different configuration. A file that is not a checkpoint raises ``BadInputFile``."""
    path = Path(path)
    if not path.is_file():
        raise BadInputFile(str(path), "no such checkpoint")
    if not h5py.is_hdf5(path):
        raise BadInputFile(str(path), "not an HDF5 file")
    with h5py.File(path, "r") as f:
        kind = _text(f.attrs.get("kind", ""))
        if kind != "checkpoint":
            raise BadInputFile(str(path), f"kind is {kind!r}, expected 'checkpoint'")
        version = int(f.attrs.get("format_version", 0))
        if version != FORMAT_VERSION:
            raise CheckpointMismatch(str(path), "checkpoint format", version, FORMAT_VERSION)
        stored = json.loads(_text(f.attrs["config"]))
        if config is not None:
            current = json.loads(json.dumps(config, sort_keys=True, default=str))
            if _text(f.attrs["fingerprint"]) != fingerprint(current) or stored != current:
                key, a, b = _first_difference(stored, current)
                raise CheckpointMismatch(str(path), key, a, b)
        done = [(_text(d), _text(fn), int(a), int(b)) for d, fn, a, b in f["done"][()]]
        failed: dict[str, dict[str, str]] = {}
        for row in f["files_failed"][()]:
            rec = json.loads(_text(row))
            failed.setdefault(rec["dataset"], {})[rec["file"]] = rec["error"]
        return Checkpoint(
            path=str(path),
            config=stored,
            total=read_tree(f["accumulator"]),
            done=done,
            files_failed=failed,
            meta=read_meta(f),
        )
