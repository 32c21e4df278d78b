"""Freed memory kept for the next tensor of its size, instead of being handed back to the system at once.

glibc serves every block over 32 MB (one feature map of a BraTS case is 20–80 MB) with a fresh mapping and unmaps
it when freed, so the next tensor of that size faults every page in again, zero-filled. On 2 cores that was up
to a third of a network's explanation stage and a tenth of a three-network job (docs/explanations.md, "Cost").
`reuse_freed_memory` makes such blocks come from the heap, where freed memory is reused, and returns to the
system what lies free beyond `trim` bytes at the heap's top. The job's peak grows by about a tenth. Only glibc has
these settings; elsewhere it does nothing. The command line calls it at start; a Python caller may do the same.
"""
from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
DEFAULT_TRIM = 256 << 20


def reuse_freed_memory(trim: int = DEFAULT_TRIM) -> bool:
    """Serve large blocks from the heap and keep up to `trim` bytes of it free; True where glibc took both."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, trim))
