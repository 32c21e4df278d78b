"""Freed memory kept for the next tensor of its size, instead of being handed back to the system at once.

glibc serves every block over 32 MB (one feature map of a BraTS case is 20–80 MB) with a fresh mapping and unmaps
it when freed, so the next tensor of that size faults every page in again, zero-filled. On 2 cores that was up
to a third of a network's explanation stage and a tenth of a three-network job (docs/explanations.md, "Cost").
`reuse_freed_memory` makes such blocks come from the heap, where freed memory is reused, and returns to the
system what lies free beyond `trim` bytes at the heap's top. It also keeps one heap for every thread: by default
each thread that allocates gets an arena of its own, and a block freed there (a map written by a writer thread,
a buffer of a library's worker) is never reused by the others, which had raised a three-network job's peak by
about 250 MB. Only glibc has these settings; elsewhere it does nothing. The command line calls it at start; a
Python caller may do the same.
"""
from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
M_ARENA_MAX = -8
DEFAULT_TRIM = 256 << 20


def reuse_freed_memory(trim: int = DEFAULT_TRIM) -> bool:
    """Serve large blocks from one heap shared by all threads and keep up to `trim` bytes of it free; True where
    glibc took all three settings. Call it before other threads start."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all([mallopt(M_MMAP_MAX, 0), mallopt(M_TRIM_THRESHOLD, trim), mallopt(M_ARENA_MAX, 1)])
