"""JAX's persistent compilation cache for the calibration's compiled fits.

One ``wmass calibrate`` compiles the batched tag-and-probe Newton and the momentum-scale fit
(~10 s of XLA compilation, more than the fits themselves). With the cache on disk a second
calibration with the same shapes (same binning, same chunk size) loads the executables
instead of compiling them.

- Directory: ``$WMASS_JAX_CACHE`` if set (``off``, ``0`` or empty: no cache), else
  ``$XDG_CACHE_HOME/wmass/jax`` (``~/.cache/wmass/jax``); a cache directory already given to
  JAX (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``) is used as it is.
- Only compilations of at least :data:`MIN_COMPILE_S` seconds are stored (the small helper
  kernels are not worth a file). With the ``filelock`` package installed the directory is
  kept under :data:`MAX_BYTES` (JAX's LRU eviction needs the lock); without it JAX does not
  evict (one calibration stores 2-3 entries, ~0.25 MB: delete the directory to reclaim).

The cache is keyed by JAX on the computation, the JAX/jaxlib version and the backend, so a
stale entry is never used. Benchmark: docs/calibration.md (*Speed*).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

__all__ = ["MAX_BYTES", "MIN_COMPILE_S", "cache_dir", "enable_compilation_cache"]

MIN_COMPILE_S = 0.5
MAX_BYTES = 512 * 2**20
_ENV = "WMASS_JAX_CACHE"


def cache_dir() -> Path | None:
    """The cache directory chosen by the environment (None: disabled)."""
    value = os.environ.get(_ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "0", "off", "none") else Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "wmass" / "jax"


def enable_compilation_cache() -> Path | None:
    """Point JAX's persistent compilation cache at :func:`cache_dir` (once; idempotent).
    Returns the directory in use, None when disabled or when it cannot be created."""
    import jax

    current = jax.config.values.get("jax_compilation_cache_dir")
    if current:
        return Path(current)
    path = cache_dir()
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home: compile every time, as without the cache
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_S)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    if importlib.util.find_spec("filelock") is not None:  # JAX's LRU eviction needs it
        jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    try:  # a process that compiled before without a cache has it marked unused: re-read
        from jax._src import compilation_cache

        if compilation_cache.is_initialized() and not compilation_cache.is_cache_used(
            jax.devices()[0].client
        ):
            compilation_cache.reset_cache()
    except Exception:  # noqa: BLE001, S110 - private API; without it only that process misses
        pass
    return path
