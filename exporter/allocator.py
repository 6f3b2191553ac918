"""Tuning of glibc's malloc for a long-running poller (no effect elsewhere).

Two glibc defaults make a process like this one keep far more memory than it holds:

* **One arena per thread** (up to 8 per core). Every polling thread allocates and frees
  rendered lines and parsed JSON in its own arena, and each arena keeps its high-water
  mark. Two arenas are plenty for threads that mostly wait for SPE.
* **A sliding mmap threshold.** Blocks above the threshold are mapped and unmapped on
  their own, so freeing them returns the memory at once; but glibc raises the threshold
  to the size of every such block freed (up to 32 MB), after which a collector's large
  per-family buffers come from the heap and leave holes in it. A fixed threshold keeps
  them mapped.

Measured with ``benchmarks/memory.py --instances 2000``: 108.5 MB -> about 93 MB resident
with either setting (benchmarks/RESULTS.md). An operator's own ``MALLOC_ARENA_MAX`` or
``MALLOC_MMAP_THRESHOLD_`` environment variable wins over these defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# mallopt parameter numbers from glibc's malloc.h
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

ARENA_MAX = 2
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value, kept fixed


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only: probe for it
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def tune_allocator(environ: dict[str, str] | os._Environ = os.environ) -> dict[str, int]:
    """Apply the settings above (call early, before the polling threads start).

    Returns what was set, e.g. ``{"arena_max": 2}``; empty without glibc.
    """
    applied: dict[str, int] = {}
    if _LIBC is None:
        return applied
    if "MALLOC_ARENA_MAX" not in environ and _LIBC.mallopt(M_ARENA_MAX, ARENA_MAX) == 1:
        applied["arena_max"] = ARENA_MAX
    if "MALLOC_MMAP_THRESHOLD_" not in environ and _LIBC.mallopt(
        M_MMAP_THRESHOLD, MMAP_THRESHOLD
    ) == 1:
        applied["mmap_threshold"] = MMAP_THRESHOLD
    return applied


def release_free_memory() -> None:
    """Hand memory freed by a collector run back to the OS.

    A run over thousands of instances allocates and frees many objects from several
    threads; glibc keeps freed heap pages in its arenas, so without this the process's
    RSS stays at its peak rather than at what it really holds.
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
