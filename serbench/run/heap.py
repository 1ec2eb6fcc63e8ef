"""Returning the C heap's free pages to the system between jobs.

Training allocates and frees tensors of ever-changing shapes (length-bucketed batches), and
glibc's allocator keeps what was freed for reuse, so a run's resident memory climbs from job
to job above what is alive. Trimming once per job is cheap; trimming more often (per epoch
and stage), returning memory on every free (``MALLOC_TRIM_THRESHOLD_=0``) or serving blocks
of 4 MB and more by ``mmap`` each cost 1.2x to 2.7x the time of the GMP-ATL demo in page
faults (benchmarks/perf/RESULTS.md). Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache


@lru_cache(maxsize=1)
def _trim():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return getattr(libc, "malloc_trim", None)


def release() -> None:
    """``malloc_trim(0)``: hand free heap pages back to the system (glibc only)."""
    trim = _trim()
    if trim is not None:
        trim(0)
