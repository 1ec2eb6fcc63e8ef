"""Per-job claims: processes sharing a run directory never compute the same (fold, seed) job.

A claim is the file ``claims/<job>.claim``, created with ``O_CREAT | O_EXCL`` (atomic on local
filesystems and on NFS v3 and later), holding its owner's host, pid and start time. While the
job runs the owner touches the file every ``HEARTBEAT`` seconds. A claim is stale, and may be
taken over, when its owner is a process on this host that no longer exists, or when it has not
been touched for ``LEASE`` seconds (an owner on another host that died or lost the
filesystem). Taking over renames the stale file away first, so that of two processes that
find the same stale claim only one goes on. The claim is removed when the job's files are
written; a job whose owner crashed is simply claimed again by the next run.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from serbench.errors import SerbenchError
from serbench.results import failure_path, job_done, job_stem
from serbench.textfiles import read_json

HEARTBEAT = 30.0  # seconds between an owner's touches of its claim
LEASE = 300.0  # an untouched claim from another host is stale after this
POLL = 2.0  # seconds between looks at jobs another process holds


def claim_path(run_dir: Path, fold: str, seed: int) -> Path:
    return Path(run_dir) / "claims" / f"{job_stem(fold, seed)}.claim"


def read_owner(path: Path) -> dict | None:
    """``{"host", "pid", "started"}`` of a claim, None when there is none (or it is being written)."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def is_stale(path: Path, lease: float = LEASE) -> bool:
    owner = read_owner(path)
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if owner is None:  # unreadable: stale only once its lease is over (it may be mid-write)
        return age > lease
    if owner.get("host") == socket.gethostname():
        return not _alive(int(owner.get("pid", -1)))
    return age > lease


@dataclass
class Claim:
    """A held claim: ``with claim:`` keeps its heartbeat going and releases it at the end."""

    path: Path
    heartbeat: float = HEARTBEAT

    def __enter__(self) -> Claim:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"claim {self.path.name}", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                return

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.release()

    def release(self) -> None:
        self.path.unlink(missing_ok=True)


def take(run_dir: Path, fold: str, seed: int, lease: float = LEASE) -> Claim | None:
    """Claim the job for this process; None when a live owner holds it."""
    return take_path(claim_path(run_dir, fold, seed), lease)


def take_path(path: Path, lease: float = LEASE) -> Claim | None:
    """Create the claim file ``path`` for this process (taking over a stale one); None when a
    live owner holds it. Also the lock file of :mod:`serbench.locks` where flock cannot be used."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and is_stale(path, lease):
        stale = read_owner(path)
        moved = path.with_name(f"{path.name}.stale-{socket.gethostname()}-{os.getpid()}")
        try:
            os.rename(path, moved)
        except FileNotFoundError:  # another process took it over first
            return None
        if read_owner(moved) != stale:  # a fresh claim slipped in between: give it back
            os.rename(moved, path)
            return None
        moved.unlink(missing_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w") as handle:
        json.dump({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}, handle)
    return Claim(path)


def status(run_dir: Path) -> list[tuple[str, int, str, str]]:
    """(fold, seed, state, owner) of every job of a run: state is ``done``, ``running``
    (a live claim), ``stale`` (a claim whose owner is gone: the next run takes it over) or
    ``failed`` (it raised: the last error, and where its traceback is) or ``pending``; owner is
    ``host:pid since HH:MM:SS`` for a claim."""
    listing = Path(run_dir) / "jobs.json"
    try:
        jobs = read_json(listing)
    except FileNotFoundError:
        raise SerbenchError(f"{listing}: not found (not a run directory, or one started before serbench listed its jobs)") from None
    rows = []
    for job in jobs:
        fold, seed = str(job["fold"]), int(job["seed"])
        path = claim_path(run_dir, fold, seed)
        owner = read_owner(path) if path.exists() else None
        who = (f"{owner.get('host')}:{owner.get('pid')} since {time.strftime('%H:%M:%S', time.localtime(owner.get('started', 0)))}"
               if owner else "")
        failure = failure_path(run_dir, fold, seed)
        if job_done(run_dir, fold, seed):
            state = "done"
        elif path.exists():
            state = "stale" if is_stale(path) else "running"
        elif failure.exists():
            state = "failed"
            who = f"{_failure_line(failure)} (traceback: {failure})"
        else:
            state = "pending"
        rows.append((fold, seed, state, who))
    return rows


def _failure_line(path: Path) -> str:
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return "failed"
    return f"{record.get('host', '?')}: {record.get('error', '?')}"
