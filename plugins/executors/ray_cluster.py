"""``ray``: every unit of a run is one Ray task, on an existing cluster or a local one.

Connects to ``address`` (or ``$RAY_ADDRESS``); with neither, starts a local Ray on this
machine. Each unit (feature-extraction shards, then (fold, seed) jobs) is a task asking for
``num_cpus`` CPUs and ``num_gpus`` GPUs, running ``serbench.execute.work_unit(RUN_DIR, unit,
device)`` in a Ray worker: serbench must be installed on every node, and the run directory and
the feature cache must be on a filesystem they all see. A task that raises is retried
``max_retries`` times (``retry_exceptions``); one that still fails is reported, its traceback
kept in ``RUN_DIR/failed/``, and the other tasks finish. A task runs on ``cuda`` exactly when
``num_gpus`` > 0 (Ray hides the GPUs from a task that asks for none).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from serbench.errors import SerbenchError
from serbench.plan import worker_device


def _work(run_dir: str, unit, device: str, threads: int) -> str:
    import torch

    from serbench.execute import work_unit

    torch.set_num_threads(max(1, threads))
    return work_unit(run_dir, unit, device)


class RayExecutor:
    def __init__(self, address: str, num_cpus: float, num_gpus: float, max_retries: int, local_cpus: int):
        if num_cpus <= 0 or num_gpus < 0 or max_retries < 0:
            raise SerbenchError("-o executor.num_cpus/num_gpus/max_retries: expected num_cpus > 0, the others >= 0")
        self.address = address or os.environ.get("RAY_ADDRESS", "")
        self.num_cpus, self.num_gpus, self.max_retries, self.local_cpus = num_cpus, num_gpus, max_retries, local_cpus

    def _ray(self):
        try:
            import ray
        except ImportError:
            raise SerbenchError("--executor ray needs Ray: pip install 'serbench[ray]'") from None
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.local_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False)
        return ray

    def slots(self, units: int) -> int:
        """Units that fit on the cluster at once (its GPUs or CPUs over what a task asks)."""
        resources = self._ray().cluster_resources()
        fits = resources.get("GPU", 0) / self.num_gpus if self.num_gpus else resources.get("CPU", 1) / self.num_cpus
        return max(1, min(units, int(fits)))

    def map(self, run_dir: Path, units: Sequence, device: str, reporter) -> dict:
        device = worker_device(device, self.num_gpus, "-o executor.num_gpus")
        ray = self._ray()
        task = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=self.max_retries,
                          retry_exceptions=True)(_work)
        pending = {task.remote(str(run_dir), unit, device, int(self.num_cpus)): unit for unit in units}
        failed: dict = {}
        with reporter.task(f"{len(units)} units on Ray", len(units)) as advance:
            while pending:
                (ready,), _ = ray.wait(list(pending), num_returns=1)
                unit = pending.pop(ready)
                try:
                    reporter.info(ray.get(ready))
                except ray.exceptions.RayTaskError as exc:  # after max_retries: reported, the others go on
                    cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                    failed[unit] = f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
                    reporter.info(f"{unit} failed: {failed[unit]}")
                advance(1)
        return failed
