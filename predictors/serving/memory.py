"""Process memory as the kernel counts it, and handing freed memory back to it."""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import resource

MB = 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Resident set size now (Linux /proc); peak RSS where /proc is missing."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _load_libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


_libc = _load_libc()


def release_freed_memory() -> None:
    """Collect garbage and ask glibc to return free heap pages to the kernel.

    Without malloc_trim an unloaded model's pages stay in the process's free lists and
    RSS never falls, which is exactly what a memory budget must not allow.
    """
    gc.collect()
    if _libc is not None and hasattr(_libc, "malloc_trim"):
        _libc.malloc_trim(0)


M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def tune_malloc(arenas: int = 2, mmap_threshold: int = 256 * 1024) -> None:
    """Keep glibc from hoarding memory the worker has freed.

    Each gunicorn thread would otherwise get a malloc arena of its own; and after the
    first large buffer is freed glibc raises its mmap threshold dynamically, so every
    later activation tensor of an image model comes from the heap, where freed pages
    stay resident. A fixed threshold keeps large buffers in mmap, returned on free.
    Call it in the worker before its threads start.
    """
    if _libc is None or not hasattr(_libc, "mallopt"):
        return
    _libc.mallopt(M_ARENA_MAX, arenas)
    _libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)
    _libc.mallopt(M_TRIM_THRESHOLD, mmap_threshold * 2)
