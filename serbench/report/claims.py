"""Per-job claims: processes sharing a run directory never compute the same (fold, seed) job.

A claim is the file ``claims/<job>.claim``, created with ``O_CREAT | O_EXCL`` (atomic on local
filesystems and on NFS v3 and later), holding its owner's host, boot, pid and process start
time. While the job runs the owner touches the file every ``HEARTBEAT`` seconds. A claim is
stale, and may be taken over, when

- its owner is on this host and is gone: no process with its pid, or one that started at
  another time or in another boot (a recycled pid, or a foreign live process, never holds a
  job): released at once;
- its owner's start time cannot be checked here (another host, or no ``/proc``) and it has not
  been touched for ``LEASE`` seconds (an owner that died or lost the filesystem);
- it cannot be read as a claim (garbage, empty, binary) and is older than ``GRACE`` seconds
  (its owner writes it right after creating it).

So a job waits at most ``LEASE`` seconds for a holder that is not working on it. Taking over
renames the stale file away first, so that of two processes that find the same stale claim
only one goes on, and says why in the log. The claim is removed when the job's files are
written; a job whose owner crashed is simply claimed again by the next run.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from serbench.api.errors import SerbenchError
from serbench.api.textfiles import read_json
from serbench.api.work import Job
from serbench.report.results import job_done
from serbench.report.rundir import RunDir

HEARTBEAT = 30.0  # seconds between an owner's touches of its claim
LEASE = 300.0  # an untouched claim whose owner cannot be checked is stale after this
GRACE = 10.0  # an unreadable claim is stale after this (its owner writes it as it creates it)
POLL = 2.0  # seconds between looks at jobs another process holds

log = logging.getLogger("serbench")


def _boot_id() -> str | None:
    """This boot of this host (Linux): a pid and a start time name one process only within it."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def process_start(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat`` field 22);
    None where there is no such process or no ``/proc``. A pid the kernel reuses gets another."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()  # the name (field 2) may hold spaces and parentheses
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def owner_record() -> dict:
    """What a claim says about the process holding it."""
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": os.getpid(),
            "process_start": process_start(os.getpid()), "started": time.time()}


def read_owner(path: Path) -> dict | None:
    """``{"host", "pid", "started", ...}`` of a claim; None when there is none or it is not a
    claim (being written, or garbage: empty, binary, not an object, no integer pid)."""
    try:
        owner = json.loads(path.read_bytes())
    except (OSError, ValueError):  # ValueError: JSON or UTF-8 errors
        return None
    if not isinstance(owner, dict) or type(owner.get("pid")) is not int or not isinstance(owner.get("host"), str):
        return None
    return owner


def _alive(pid: int) -> bool:
    if pid <= 0:  # 0 and negative pids signal process groups
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OverflowError:
        return False
    return True


def stale_reason(path: Path, lease: float = LEASE) -> str:
    """Why the claim ``path`` may be taken over ('' while its owner holds it, or when it is gone)."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return ""
    owner = read_owner(path)
    if owner is None:
        return f"not a readable claim, {age:.0f} s old" if age > GRACE else ""
    who = f"{owner['host']}:{owner['pid']}"
    if owner["host"] == socket.gethostname():
        if owner.get("boot") is not None and _boot_id() is not None and owner["boot"] != _boot_id():
            return f"its owner {who} ran before this host rebooted"
        if not _alive(owner["pid"]):
            return f"its owner {who} is gone"
        recorded, now = owner.get("process_start"), process_start(owner["pid"])
        if recorded is not None and now is not None:
            return "" if recorded == now else f"pid {owner['pid']} is now another process (it started at another time)"
    if age > lease:
        return f"its owner {who} has not touched it for {age:.0f} s (lease {lease:.0f} s)"
    return ""


def is_stale(path: Path, lease: float = LEASE) -> bool:
    return bool(stale_reason(path, lease))


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
        """Remove the claim if it is still this process's (one taken over meanwhile is not ours)."""
        owner = read_owner(self.path)
        if owner is None or (owner["host"], owner["pid"]) == (socket.gethostname(), os.getpid()):
            self.path.unlink(missing_ok=True)


def take(run_dir: Path, fold: str, seed: int, lease: float = LEASE) -> Claim | None:
    """Claim the job for this process; None when a live owner holds it."""
    return take_path(RunDir(run_dir).claim(Job(fold, seed)), lease)


def take_path(path: Path, lease: float = LEASE) -> Claim | None:
    """Create the claim file ``path`` for this process (taking over a stale one); None when a
    live owner holds it. Also the lock file of :mod:`serbench.report.locks` where flock cannot be used."""
    path.parent.mkdir(parents=True, exist_ok=True)
    reason = stale_reason(path, lease) if path.exists() else ""
    if reason:
        stale = _content(path)
        moved = path.with_name(f"{path.name}.stale-{socket.gethostname()}-{os.getpid()}")
        try:
            os.rename(path, moved)
        except FileNotFoundError:  # another process took it over first
            return None
        if _content(moved) != stale:  # a fresh claim slipped in between: give it back
            os.rename(moved, path)
            return None
        moved.unlink(missing_ok=True)
        log.info(f"{path}: taken over ({reason})")
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w") as handle:
        json.dump(owner_record(), handle)
    return Claim(path)


def _content(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def status(run_dir: Path) -> list[tuple[str, int, str, str]]:
    """(fold, seed, state, owner) of every job of a run: state is ``done``, ``running``
    (a live claim), ``stale`` (a claim whose owner is gone: the next run takes it over) or
    ``failed`` (it raised: the last error, and where its traceback is) or ``pending``; owner is
    ``host:pid since HH:MM:SS`` for a claim."""
    where = RunDir(run_dir)
    listing = where.jobs_list
    try:
        jobs = read_json(listing)
    except FileNotFoundError:
        raise SerbenchError(f"{listing}: not found (not a run directory, or one started before serbench listed its jobs)") from None
    if not isinstance(jobs, list) or not all(isinstance(job, dict) and isinstance(job.get("fold"), str)
                                             and type(job.get("seed")) is int for job in jobs):
        raise SerbenchError(f"{listing}: not a list of {{\"fold\": name, \"seed\": integer}} jobs (a damaged run "
                            "directory: serbench run or serbench job rewrites it)")
    rows = []
    for job in jobs:
        fold, seed = job["fold"], job["seed"]
        path = where.claim(Job(fold, seed))
        owner = read_owner(path) if path.exists() else None
        since = owner.get("started") if owner else None
        when = time.strftime("%H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else "?"
        who = f"{owner['host']}:{owner['pid']} since {when}" if owner else ""
        failure = where.failure(Job(fold, seed))
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
        record = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return "failed"
    if not isinstance(record, dict):
        return "failed"
    return f"{record.get('host', '?')}: {record.get('error', '?')}"
