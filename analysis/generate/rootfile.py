"""A NanoAOD-like ROOT file written batch by batch: the ``Events`` tree (one basket per
batch) and the ``LuminosityBlocks`` tree, under a temporary name until it is closed; the
basket compressions of ``wmass generate --compression``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from fit.provenance import atomic_path

__all__ = ["COMPRESSIONS", "DEFAULT_COMPRESSION", "RootWriter"]

#: name -> uproot compression; the default (lz4) is chosen by benchmarks/generate.py
COMPRESSIONS = {
    "lz4": lambda: uproot.LZ4(1),
    "zstd": lambda: uproot.ZSTD(1),
    "zstd5": lambda: uproot.ZSTD(5),
    "none": lambda: None,
}
DEFAULT_COMPRESSION = "lz4"


class RootWriter:
    """A ROOT file with a TTree ``Events`` written batch by batch (one basket per batch) and,
    at the end, a TTree ``LuminosityBlocks`` listing the lumisections the file covers."""

    def __init__(self, path: Path, compression: str) -> None:
        self._atomic = atomic_path(path)  # entered here, left by close()
        self.tmp = self._atomic.__enter__()
        self.path = path
        self.file = uproot.recreate(self.tmp, compression=COMPRESSIONS[compression]())
        self.tree = None

    def write(self, branches: dict[str, Any]) -> None:
        if self.tree is None:
            types = {
                k: (v.type.content if isinstance(v, ak.Array) else v.dtype)
                for k, v in branches.items()
            }
            self.tree = self.file.mktree("Events", types)
        self.tree.extend(branches)

    def write_lumi_blocks(self, run: np.ndarray, ls: np.ndarray) -> None:
        """The ``LuminosityBlocks`` tree: one entry ``(run, luminosityBlock)`` per lumisection."""
        types = {"run": np.uint32, "luminosityBlock": np.uint32}
        tree = self.file.mktree("LuminosityBlocks", types)
        if len(run):
            tree.extend(
                {
                    "run": np.asarray(run, dtype=np.uint32),
                    "luminosityBlock": np.asarray(ls, dtype=np.uint32),
                }
            )

    def close(self) -> None:
        self.file.close()
        self._atomic.__exit__(None, None, None)
