"""serbench.run.heap gives freed heap memory back to the system (glibc)."""

from __future__ import annotations

import ctypes
import platform

import pytest

from serbench.run import heap


def _resident_kb() -> int:
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS"))


@pytest.mark.skipif(platform.system() != "Linux" or not platform.libc_ver()[0] == "glibc", reason="glibc only")
def test_release_returns_freed_heap_pages():
    # 300 MB in 32 kB blocks (below glibc's mmap threshold: they live on the heap), freed in
    # an order that leaves the heap's top in use, so free() alone cannot shrink it
    blocks = [ctypes.create_string_buffer(32 * 1024) for _ in range(300 * 32)]
    keep = blocks[-1]
    for block in blocks[:-1]:
        ctypes.memset(block, 1, len(block))
    del blocks
    before = _resident_kb()
    heap.release()
    after = _resident_kb()
    assert before - after > 200 * 1024, (before, after)
    assert keep.raw[:1] == b"\x00"  # what is alive stays
