"""``local``: the run's jobs on this machine, in this process or in N worker processes.

With ``workers`` > 1 the parent starts ``workers - 1`` processes of ``serbench job RUN_DIR``
(each takes every job it can claim, see serbench.claims) and works through the jobs itself
too, so N processes share the run and no job runs twice. Each process gets an equal share of
the cores for torch's threads (``threads``, default: cores / workers), so that N workers do not
oversubscribe the machine. A worker's log is ``workers/worker-K.log`` in the run directory; a
worker that fails leaves its job unclaimed, and the parent (or the next run) runs it again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from serbench.errors import SerbenchError


class LocalExecutor:
    def __init__(self, workers: int, threads: int):
        if workers < 1:
            raise SerbenchError(f"-o executor.workers={workers}: expected at least 1")
        self.workers = workers
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)

    def run(self, run_dir: Path, jobs: Sequence[tuple[str, int]], device: str, work: Callable[[], None]) -> None:
        """Run ``jobs`` of ``run_dir``: ``work()`` is this process's own pass over them."""
        import torch

        if self.workers == 1 or len(jobs) < 2:
            work()
            return
        logs = Path(run_dir) / "workers"
        logs.mkdir(exist_ok=True)
        children = []
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads), "SERBENCH_TORCH_THREADS": str(self.threads)}
        for k in range(1, min(self.workers, len(jobs))):
            log = open(logs / f"worker-{k}.log", "w")  # noqa: SIM115 (closed below)
            command = [sys.executable, "-m", "serbench", "job", str(run_dir), "--device", device]
            children.append((subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env), log, k))
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            work()
        finally:
            torch.set_num_threads(before)
            failed = []
            for child, log, k in children:
                if child.wait() != 0:
                    failed.append(f"worker {k} exited with {child.returncode} (see {logs / f'worker-{k}.log'})")
                log.close()
        if failed:  # their jobs were run by this process meanwhile, or are left for the next run
            print("serbench: " + "; ".join(failed), file=sys.stderr)
