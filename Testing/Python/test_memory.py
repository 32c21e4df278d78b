"""Freed large blocks are reused, not faulted in again (memory.py): counted in minor page faults, in a fresh process."""
from __future__ import annotations

import subprocess
import sys

import pytest

CHILD = """import resource, sys
import numpy as np
from BraTSXAILib.memory import reuse_freed_memory
took = reuse_freed_memory() if sys.argv[1] == "reuse" else None
block = np.ones(16 << 20)  # 128 MB, over glibc's largest heap block
del block
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = np.ones(16 << 20)
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> tuple[str, int]:
    took, faults = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True,
                                  check=True).stdout.split()
    return took, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_freed_block_is_reused_without_faulting_its_pages_in_again():
    huge_pages = (128 << 20) // (2 << 20)  # the fewest faults a fresh mapping can take (2 MB pages)
    took, reused = page_faults("reuse")
    _, fresh = page_faults("default")
    assert took == "True"
    assert fresh >= huge_pages  # the default: a fresh mapping, its pages faulted in again
    assert 10 * reused < fresh
