"""Freed large blocks are reused, not faulted in again (memory.py): counted in minor page faults, in a fresh process."""
from __future__ import annotations

import subprocess
import sys

import pytest

CHILD = """import resource, sys, threading
import numpy as np
from BraTSXAILib.memory import reuse_freed_memory
took = reuse_freed_memory() if sys.argv[1] == "reuse" else None
size = int(sys.argv[2])

def allocate_and_free():
    block = np.ones(size // 8)
    del block

if sys.argv[3] == "thread":  # freed by another thread (a writer), then needed by the main one
    worker = threading.Thread(target=allocate_and_free)
    worker.start()
    worker.join()
else:
    allocate_and_free()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = np.ones(size // 8)
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str, size: int = 128 << 20, where: str = "main") -> tuple[str, int]:
    took, faults = subprocess.run([sys.executable, "-c", CHILD, mode, str(size), where], capture_output=True,
                                  text=True, check=True).stdout.split()
    return took, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_freed_block_is_reused_without_faulting_its_pages_in_again():
    huge_pages = (128 << 20) // (2 << 20)  # the fewest faults a fresh mapping can take (2 MB pages)
    took, reused = page_faults("reuse")
    _, fresh = page_faults("default")
    assert took == "True"
    assert fresh >= huge_pages  # the default: a fresh mapping, its pages faulted in again
    assert 10 * reused < fresh


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_block_freed_by_another_thread_is_reused_too():
    size = 32 << 20  # fits a thread's own arena, which keeps it from the main thread unless there is one heap
    took, reused = page_faults("reuse", size, "thread")
    _, fresh = page_faults("default", size, "thread")
    assert took == "True"
    assert fresh >= size // (2 << 20)
    assert 10 * reused < fresh
