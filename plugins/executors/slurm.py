"""``slurm``: every unit of a run is one task of a Slurm job array, submitted with submitit.

The units (feature-extraction shards, then the (fold, seed) jobs) go as one array each
(``map_array``); each task runs ``serbench.execute.work_unit(RUN_DIR, unit, device)``, which
rebuilds what it needs from the run directory and the feature cache: both must be on a
filesystem every node sees. submitit's logs (and the pickled submission) of task ``ARRAY_INDEX`` are
under ``RUN_DIR/slurm/``. A task that raises is reported with the first line of its error and
its log path; its job stays pending (submitit does not resubmit exceptions), so running the
same command again submits only what is still missing.

``cluster=local`` runs the same tasks with submitit's local executor (for tests and a single
machine). Three of its defaults are replaced here: its 2-minute timeout (``time`` is always
passed), its lack of a concurrency cap (at most ``parallelism`` tasks run at once, default:
the cores divided by ``cpus``) and its ``CUDA_VISIBLE_DEVICES=''`` for a task without
``gpus``: a job would then fall back to the CPU silently, so a task runs on ``cuda`` exactly
when ``gpus`` >= 1, on the CPU otherwise, and a run asked for ``--device cuda`` with
``gpus=0`` is refused before anything is submitted.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from serbench.errors import SerbenchError
from serbench.plan import worker_device


def _work(run_dir: str, unit, device: str, threads: int) -> str:
    import torch

    from serbench.execute import work_unit

    torch.set_num_threads(threads)
    return work_unit(run_dir, unit, device)


class SlurmExecutor:
    def __init__(self, cluster: str, partition: str, gpus: int, cpus: int, mem_gb: int, time: int, account: str,
                 parallelism: int, setup: str, poll: float):
        if time < 1:
            raise SerbenchError(f"-o executor.time={time}: expected the minutes a task may run, at least 1")
        if cpus < 1 or gpus < 0 or mem_gb < 0 or parallelism < 0:
            raise SerbenchError("-o executor.cpus/gpus/mem_gb/parallelism: expected cpus >= 1 and the others >= 0")
        self.cluster, self.partition, self.gpus, self.cpus = cluster, partition, gpus, cpus
        self.mem_gb, self.time, self.account, self.poll = mem_gb, time, account, poll
        self.setup = [line.strip() for line in setup.split(";") if line.strip()]
        if cluster == "local" and not parallelism:
            parallelism = max(1, (os.cpu_count() or 1) // cpus)
        self.parallelism = parallelism

    def slots(self, units: int) -> int:
        return min(units, self.parallelism) if self.parallelism else units

    def executor(self, run_dir: Path):
        try:
            import submitit
        except ImportError:
            raise SerbenchError("--executor slurm needs submitit: pip install 'serbench[slurm]'") from None
        folder = Path(run_dir) / "slurm" / "%j"  # a task's id: ARRAY_INDEX on Slurm, a pid locally
        if self.cluster == "local":
            executor = submitit.LocalExecutor(folder=folder)
            executor.update_parameters(timeout_min=self.time, gpus_per_node=self.gpus, setup=self.setup)
            return executor
        if shutil.which("sbatch") is None or shutil.which("srun") is None:
            raise SerbenchError("--executor slurm: no sbatch on PATH (not a Slurm login node?); "
                                "-o executor.cluster=local runs the same tasks on this machine")
        executor = submitit.SlurmExecutor(folder=folder)
        params = {"time": self.time, "cpus_per_task": self.cpus, "job_name": f"serbench-{Path(run_dir).name}",
                  "setup": self.setup, "array_parallelism": self.parallelism or 256}  # submitit's default cap
        if self.gpus:
            params["gpus_per_node"] = self.gpus
        if self.mem_gb:
            params["mem"] = f"{self.mem_gb}GB"
        if self.partition:
            params["partition"] = self.partition
        if self.account:
            params["account"] = self.account
        executor.update_parameters(**params)
        return executor

    def submit(self, run_dir: Path, units: Sequence, device: str) -> list:
        """Submit every unit (one array on Slurm); the submitit jobs, in the order of ``units``."""
        device = worker_device(device, self.gpus, "-o executor.gpus")
        executor = self.executor(run_dir)
        args = ([str(run_dir)] * len(units), list(units), [device] * len(units), [self.cpus] * len(units))
        if self.cluster != "local":
            return executor.map_array(_work, *args)
        return [executor.submit(_work, *one) for one in zip(*args)]

    def map(self, run_dir: Path, units: Sequence, device: str, reporter) -> dict:
        """Run every unit; the units that raised (or timed out), with their errors."""
        failed: dict = {}
        if self.cluster != "local":
            jobs = self.submit(run_dir, units, device)
            reporter.info(f"submitted {len(jobs)} Slurm array tasks (job {jobs[0].job_id.split('_')[0]}); "
                          f"logs under {Path(run_dir) / 'slurm'}")
            for unit, job in zip(units, jobs):
                self._collect(unit, job, failed, reporter)
            return failed
        todo, running = list(units), []  # submitit's local executor has no cap: keep `parallelism` running
        with reporter.task(f"{len(units)} units (submitit local, {self.parallelism} at once)", len(units)) as advance:
            while todo or running:
                while todo and len(running) < self.parallelism:
                    unit = todo.pop(0)
                    running.append((unit, self.submit(run_dir, [unit], device)[0]))
                finished = [(unit, job) for unit, job in running if job.done()]
                for unit, job in finished:
                    running.remove((unit, job))
                    self._collect(unit, job, failed, reporter)
                    advance(1)
                if not finished:
                    time.sleep(self.poll)
        return failed

    @staticmethod
    def _collect(unit, job, failed: dict, reporter) -> None:
        try:
            reporter.info(job.result())
        except Exception as exc:  # submitit's FailedJobError / UncompletedJobError: the job stays pending
            lines = [line for line in str(exc).splitlines() if line.strip()]
            failed[unit] = f"{lines[-1] if lines else type(exc).__name__} (log: {job.paths.stderr})"
            reporter.info(f"{unit} failed: {failed[unit]}")
