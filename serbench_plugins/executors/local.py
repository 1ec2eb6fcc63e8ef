"""``local``: the run's units on this machine, in this process or in a pool of N processes.

With ``workers`` = 1 (the default) everything runs in the calling process, as ``serbench run``
always did. With ``workers`` = N a pool of N processes (``concurrent.futures``, spawned, so no
state is inherited) runs the units: first the feature-extraction shards, then the (fold, seed)
jobs, each worker rebuilding what it needs from the run directory and the feature cache. Each
worker gets its share of the cores for torch's threads (``threads``, default: cores / workers)
so N workers do not oversubscribe the machine. A unit that raises is recorded (a job's
traceback in ``failed/``) and the other units still run.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from serbench.api.errors import SerbenchError
from serbench.api.work import WorkUnit

_WORKER: dict[str, object] = {}  # a pool process's own state (spawned: never shared with the caller)


def _start_worker(threads: int) -> None:
    """A pool process's start: its share of the cores. Its units share the cache it keeps in
    ``_WORKER`` (the run's rebuilt workspace, reused while its units are of one run directory)."""
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def _run_unit(unit: WorkUnit) -> str:
    return unit.cached_in(_WORKER)




class LocalExecutor:
    def __init__(self, workers: int, threads: int):
        if workers < 1:
            raise SerbenchError(f"-o executor.workers={workers}: expected at least 1")
        self.workers = workers
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)

    @property
    def in_process(self) -> bool:
        """One worker: serbench runs the units in the calling process, as it always did."""
        return self.workers == 1

    def slots(self, units: int) -> int:
        """How many units run at once (the number of extraction shards)."""
        return min(self.workers, units)

    def map(self, run_dir: Path, units: Sequence[WorkUnit], device: str, reporter) -> dict:
        """Run every unit in the pool (a WorkUnit pickles and is called in its worker); the
        units that raised, with their errors."""
        failed = {}
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(self.workers, len(units)), mp_context=context, initializer=_start_worker,
                                 initargs=(self.threads,)) as pool, \
                reporter.task(f"{len(units)} units on {self.workers} local workers", len(units)) as advance:
            futures = {pool.submit(_run_unit, unit): unit for unit in units}
            for future in as_completed(futures):
                unit = futures[future]
                try:
                    reporter.info(future.result())
                except Exception as exc:  # recorded; the other units go on
                    failed[unit] = f"{type(exc).__name__}: {exc}"
                    reporter.info(f"{unit} failed: {failed[unit]}")
                advance(1)
        return failed
