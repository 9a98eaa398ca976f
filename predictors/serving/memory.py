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
    trim_heap()


M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def tune_malloc(arenas: int = 2, mmap_threshold: int = 16 * MB) -> None:
    """Keep glibc's malloc from multiplying arenas and from hoarding what the worker frees.

    Each gunicorn thread would otherwise get a malloc arena of its own. Buffers above
    `mmap_threshold` are mapped and returned on free: one-off giants, such as a large PNG
    decoded whole in Pillow's 16 MB blocks, never grow the heap. Below it come an upload's
    many working arrays and ONNX Runtime's planned activation block (12.5 MB for the ECG
    model, 4.5 MB for the retina), reused from the heap without a page fault; a fixed
    threshold also stops glibc raising it after the first large free. trim_heap() returns
    what they leave once image work has been idle a while (predictors/server/bridge.py's
    HeapTrim). At 4 MB (issue 22 to issue 31) the ECG's block was a fresh mapping on every
    run: 3,135 page faults and about 5.5 ms of its ONNX Runtime run on one core (43.4 against
    48.9 ms, interleaved); at 256 kB (before issue 22) every working array was one, twice the
    CPU of a fundus photo's pixel work.
    Call it in the worker before its threads start.
    """
    if _libc is None or not hasattr(_libc, "mallopt"):
        return
    _libc.mallopt(M_ARENA_MAX, arenas)
    _libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)
    _libc.mallopt(M_TRIM_THRESHOLD, mmap_threshold * 2)


def trim_heap() -> None:
    """Hand the heap's free pages back to the kernel (malloc_trim), without a garbage collection:
    a millisecond or two once image work is idle, instead of keeping its tens of MB resident."""
    if _libc is not None and hasattr(_libc, "malloc_trim"):
        _libc.malloc_trim(0)
