"""Freed memory goes back to the operating system: a long search's resident size follows what it holds, not
the high-water mark of its largest trial."""
import sys

import pytest

from nas.memory import release_free_memory


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim and /proc are Linux's")
def test_freed_heap_memory_is_returned():
    """200 MB of 4 KB heap blocks (below glibc's mmap threshold), all freed but the last, which pins the heap's
    top so glibc cannot shrink it by itself: the pages stay resident until they are released."""
    blocks = [bytearray(4096) for _ in range(50_000)]
    for b in blocks:
        b[::512] = b"\x01" * 8  # touch every page
    pinned = blocks[-1]
    del blocks
    held = _rss_mb()
    assert release_free_memory() is True
    assert held - _rss_mb() > 100, "the freed blocks are still resident"
    assert pinned[0] == 1


def test_release_is_cheap_to_call_repeatedly():
    assert all(release_free_memory() in (True, False) for _ in range(20))
