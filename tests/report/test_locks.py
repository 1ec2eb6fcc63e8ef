"""Cache locks on shared filesystems: flock where it is honoured across hosts; an O_EXCL lock
file on NFS ``nolock``, on Lustre without ``-o flock``, and wherever flock fails."""

from __future__ import annotations

import errno
import threading
import time

import pytest

from serbench.report import locks

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:40 / /shared rw,relatime shared:20 - nfs4 fs:/export rw,vers=4.2,local_lock=none,addr=10.0.0.1
41 22 0:41 / /old rw,relatime shared:21 - nfs fs:/old rw,vers=3,nolock,addr=10.0.0.2
42 22 0:42 / /lustre rw shared:22 - lustre 10.0.0.3@o2ib:/fs rw,flock
43 22 0:43 / /scratch rw shared:23 - lustre 10.0.0.4@o2ib:/fs rw,localflock
44 40 0:44 / /shared/local rw shared:24 - xfs /dev/sdb1 rw
"""


@pytest.mark.parametrize("path, shared", [
    ("/home/me/cache", True),  # ext4
    ("/shared/cache", True),  # NFS v4 with network locks
    ("/old/cache", False),  # NFS nolock: flock would lock this host only
    ("/lustre/cache", True),  # Lustre -o flock
    ("/scratch/cache", False),  # Lustre localflock: one node only
    ("/shared/local/cache", True),  # the longest mount point wins
])
def test_flock_is_used_only_where_every_host_honours_it(path, shared):
    assert locks.flock_shared(path, MOUNTINFO) is shared


def _exclusion(path, monkeypatch_flock=None) -> list[tuple[str, float, float]]:
    """Two threads hold the lock in turn; their (name, start, end) spans."""
    spans = []

    def hold(name):
        with locks.exclusive(path):
            start = time.monotonic()
            time.sleep(0.3)
            spans.append((name, start, time.monotonic()))

    threads = [threading.Thread(target=hold, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(spans, key=lambda s: s[1])


def test_where_flock_fails_a_lock_file_excludes(tmp_path, monkeypatch):
    def unsupported(handle, operation):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(locks.fcntl, "flock", unsupported)  # Lustre without -o flock
    monkeypatch.setattr(locks.claims, "POLL", 0.05)
    (_, _, first_end), (_, second_start, _) = _exclusion(tmp_path / "set.lock")
    assert second_start >= first_end  # never held by both at once
    assert not (tmp_path / "set.lock.excl").exists()  # released


def test_on_a_filesystem_without_shared_flock_a_lock_file_is_used(tmp_path, monkeypatch):
    monkeypatch.setattr(locks, "flock_shared", lambda path, mountinfo=None: False)
    monkeypatch.setattr(locks.claims, "POLL", 0.05)
    seen = []
    with locks.exclusive(tmp_path / "set.lock"):
        seen.append((tmp_path / "set.lock.excl").exists())
    assert seen == [True]
    (_, _, first_end), (_, second_start, _) = _exclusion(tmp_path / "set.lock")
    assert second_start >= first_end
