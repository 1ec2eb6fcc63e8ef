"""A third-party serbench executor: every unit of a run as its own ``serbench job`` process.

It does what a scheduler's task does: ``python -m serbench job RUN_DIR --shard I/N`` for a
feature-extraction shard, ``... --fold K --seed S`` for a (fold, seed) job, ``workers`` of them
at a time, each in a fresh Python that rebuilds its work from the run directory and the
feature cache. A template for an executor that hands the same command lines to a queue.
A unit whose process exits non-zero is returned with the last line it wrote to stderr.

    pip install ./examples/serbench-subprocess
    serbench run --upstream fbank --downstream superb --protocol synthetic --executor subprocess -o executor.workers=2
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from serbench.api import Param, Spec, hookimpl


def command(run_dir: Path, work, device: str) -> list[str]:
    """The ``serbench job`` command line that runs ``work``, a :class:`serbench.api.WorkUnit`
    holding a Job(fold, seed) or a Shard(index, count): the unit is run again from the run
    directory in a fresh process instead of being called here."""
    unit = work.unit
    base = [sys.executable, "-m", "serbench", "job", str(run_dir), "--device", device, "--quiet"]
    if hasattr(unit, "fold"):
        return base + ["--fold", str(unit.fold), "--seed", str(unit.seed)]
    return base + ["--shard", f"{unit.index + 1}/{unit.count}"]


class SubprocessExecutor:
    in_process = False

    def __init__(self, workers: int):
        self.workers = workers

    def slots(self, units: int) -> int:
        return max(1, min(self.workers, units))

    def map(self, run_dir: Path, units, device: str, reporter) -> dict:
        failed, todo, running = {}, list(units), {}
        with tempfile.TemporaryDirectory() as logs, \
                reporter.task(f"{len(todo)} units as serbench job processes, {self.workers} at a time", len(todo)) as advance:
            while todo or running:
                while todo and len(running) < self.workers:
                    unit = todo.pop(0)
                    log = Path(logs) / f"unit-{len(todo)}.err"  # stderr to a file: a pipe could fill and block the job
                    with log.open("w") as err:
                        running[unit] = (subprocess.Popen(command(run_dir, unit, device), stdout=subprocess.DEVNULL,
                                                          stderr=err), log)
                for unit, (process, log) in list(running.items()):
                    if process.poll() is None:
                        continue
                    del running[unit]
                    if process.returncode != 0:
                        lines = log.read_text(errors="replace").strip().splitlines()
                        failed[unit] = lines[-1] if lines else f"exit status {process.returncode}"
                    reporter.info(f"{unit}: " + (f"failed: {failed[unit]}" if unit in failed else "done"))
                    advance(1)
                time.sleep(0.05)
        return failed


@hookimpl
def register_executors():
    return [Spec(name="subprocess", factory=SubprocessExecutor,
                 summary="each unit as its own `serbench job` process, N at a time (example plugin)",
                 params=(Param("workers", int, 1, "processes running at once", bounds=">= 1"),))]
