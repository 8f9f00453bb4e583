"""The style of a run's figures from its histogram files: the experiment label's arguments
(observed or simulated data, luminosity) and the stored axis labels (``muon pT [GeV]``), from
the files given or those the fit input's provenance names.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["hists_candidates", "style_context"]


def hists_candidates(hists: Sequence[Path], fi_path: Path | None) -> list[Path]:
    """The histograms files of a run: those given, then the inputs named in the provenance of
    the fit input (found where it names them or beside it)."""
    import h5py

    candidates = list(hists)
    if fi_path is not None:
        try:
            from fit.provenance import read_meta

            with h5py.File(fi_path, "r") as f:
                inputs = read_meta(f).get("inputs", []) or []
        except Exception:  # provenance is optional for the style
            inputs = []
        for name in inputs:
            for cand in (Path(name), fi_path.parent / Path(name).name):
                if cand.is_file():
                    candidates.append(cand)
                    break
    return candidates


def style_context(
    result: Any, hists: Sequence[Path], fi_path: Path | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The experiment label's arguments (``data``: observed or simulated; ``lumi_pb``) and the
    stored axis labels (``muon pT [GeV]``) from the histograms files: those given, else the
    fit input's inputs."""
    import h5py

    candidates = hists_candidates(hists, fi_path)
    lumi, labels = None, {}
    for path in candidates:
        try:
            with h5py.File(path, "r") as f:
                if f.attrs.get("kind") != "histograms":
                    continue
                if lumi is None and f.attrs.get("lumi_pb") is not None:
                    lumi = float(f.attrs["lumi_pb"])
                labels.update(_stored_labels(f))
        except (OSError, ValueError, KeyError):
            continue
    data = str(getattr(result, "data", "observed")) == "observed"
    return {"data": data, "lumi_pb": lumi}, labels


def _stored_labels(f: Any) -> dict[str, str]:
    """``{axis name: label}`` of the first histogram of each dataset of a hists.h5."""
    import uhi.io.hdf5

    out: dict[str, str] = {}
    for g in f["datasets"].values():
        for hg in g["histograms"].values():
            for ref in hg["axes"]:
                md = uhi.io.hdf5._convert_axes(hg["ref_axes"][ref]).get("metadata", {})
                name, label = md.get("name"), md.get("label")
                if name and label and label != name:
                    out.setdefault(str(name), str(label))
            break
    return out
