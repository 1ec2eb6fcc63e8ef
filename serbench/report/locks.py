"""Exclusive locks that hold on a shared filesystem: flock where it is honoured, else lock files.

``flock(2)`` fails (ENOSYS, EOPNOTSUPP or ENOLCK) on Lustre mounted without ``-o flock``, and on
NFS mounted ``nolock`` (or ``local_lock=flock``/``all``) it succeeds while locking nothing for the
other hosts. So the filesystem is looked up in ``/proc/self/mountinfo`` first: where flock is
not honoured across hosts, or where it fails, the lock is a file created with ``O_CREAT |
O_EXCL`` holding its owner's host and pid, kept alive by a heartbeat and taken over when its
owner died (:func:`serbench.report.claims.take_path`).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from serbench.report import claims

log = logging.getLogger("serbench")
UNSUPPORTED = {errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK, errno.EINVAL}


def mount_of(path: Path, mountinfo: str | None = None) -> tuple[str, str, set[str]]:
    """(mount point, filesystem type, mount and superblock options) of the mount holding ``path``."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return "/", "unknown", set()
    target = os.path.realpath(path)
    best = ("/", "unknown", set())
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 6:
            continue
        point = fields[4].replace("\\040", " ")
        after = line.split(" - ", 1)[1].split()
        options = set(fields[5].split(",")) | (set(after[2].split(",")) if len(after) > 2 else set())
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, after[0], options)
    return best


def flock_shared(path: Path, mountinfo: str | None = None) -> bool:
    """Whether flock on ``path`` excludes processes on other hosts too."""
    _, fstype, options = mount_of(path, mountinfo)
    if fstype.startswith("nfs"):
        return "nolock" not in options and not {"local_lock=flock", "local_lock=all"} & options
    if fstype == "lustre":
        return "flock" in options  # localflock locks one node only
    return True


@contextmanager
def exclusive(path: str | Path) -> Iterator[None]:
    """Hold the lock ``path`` (waiting for its holder); works across hosts on NFS and Lustre."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = _flock(path) if flock_shared(path.parent) else None
    if handle is not None:
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        return
    claim = claims.take_path(path.with_name(path.name + ".excl"))
    while claim is None:
        time.sleep(claims.POLL)
        claim = claims.take_path(path.with_name(path.name + ".excl"))
    with claim:
        yield


def _flock(path: Path):
    """The open, flocked file; None when this filesystem does not support flock."""
    handle = open(path, "a")  # noqa: SIM115 (closed by exclusive)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
    except OSError as exc:
        handle.close()
        if exc.errno not in UNSUPPORTED:
            raise
        log.info(f"{path}: flock unsupported here ({os.strerror(exc.errno)}): using an O_EXCL lock file instead")
        return None
    return handle
