"""``slurm``: every unit of a run is one task of a Slurm job array, submitted with submitit.

The units (feature-extraction shards, then the (fold, seed) jobs) go as one array each
(``map_array``); each task runs ``serbench.run.execute.work_unit(RUN_DIR, unit, device)``, which
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

``gpus`` defaults to ``-1``: follow the run's device, one GPU per task for a ``cuda`` run and
none for a CPU run (on a login node without a GPU, ``--device auto`` is the CPU: ask for GPUs
with ``-o executor.gpus=1``). Every option reaches the sbatch script, which a shell runs, so
they come from the command line only (a suite that sets one is refused) and are checked here:
``partition`` and ``account`` must be Slurm names, ``setup`` (shell lines by design) may not
hold a newline or another control character (``;`` separates its lines), and a run directory
whose path holds one is refused. When the executor is built (before a run, or a suite's first
cell, starts), ``sbatch`` must be on PATH and ``scontrol ping`` must answer within
``connect_timeout`` seconds, so an unreachable controller is an error naming it, never a wait.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from serbench.api.errors import SerbenchError
from serbench.run.plan import worker_device


def controller() -> str:
    """The controller hosts named in slurm.conf (``$SLURM_CONF``, else /etc/slurm/slurm.conf), for
    messages; 'see scontrol ping' when it cannot be read."""
    conf = Path(os.environ.get("SLURM_CONF") or "/etc/slurm/slurm.conf")
    try:
        text = conf.read_text(errors="replace")
    except OSError:
        return "see scontrol ping"
    hosts = re.findall(r"^\s*(?:SlurmctldHost|ControlMachine)\s*=\s*([^\s#]+)", text, re.MULTILINE | re.IGNORECASE)
    return f"{', '.join(h[:80] for h in hosts[:3])} in {conf}" if hosts else f"no SlurmctldHost in {conf}"


def _work(run_dir: str, unit, device: str, threads: int) -> str:
    import torch

    from serbench.run.execute import work_unit

    torch.set_num_threads(threads)
    return work_unit(run_dir, unit, device)


SLURM_NAME = re.compile(r"[A-Za-z0-9_.,-]+")  # partitions (a comma-separated list) and accounts
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _slurm_name(value: str, option: str) -> str:
    if value and not SLURM_NAME.fullmatch(value):
        raise SerbenchError(f"-o executor.{option}={value!r}: not a Slurm name (letters, digits and _ . , -); "
                            "it would reach the sbatch script")
    return value


class SlurmExecutor:
    def __init__(self, cluster: str, partition: str, gpus: int, cpus: int, mem_gb: int, time: int, account: str,
                 parallelism: int, setup: str, poll: float, connect_timeout: float = 30.0):
        for option, value, least in (("time", time, 1), ("cpus", cpus, 1), ("gpus", gpus, -1), ("mem_gb", mem_gb, 0),
                                     ("parallelism", parallelism, 0)):
            if value < least:
                raise SerbenchError(f"-o executor.{option}={value}: expected an integer >= {least}")
        if not poll > 0 or not connect_timeout > 0:
            option = "poll" if not poll > 0 else "connect_timeout"
            raise SerbenchError(f"-o executor.{option}: expected seconds > 0")
        if CONTROL.search(setup):
            raise SerbenchError("-o executor.setup: holds a newline or another control character; separate its "
                                "shell lines with ';'")
        self.cluster, self.partition, self.gpus, self.cpus = cluster, _slurm_name(partition, "partition"), gpus, cpus
        self.mem_gb, self.time, self.account, self.poll = mem_gb, time, _slurm_name(account, "account"), poll
        self.connect_timeout = connect_timeout
        self.setup = [line.strip() for line in setup.split(";") if line.strip()]
        if cluster == "local" and not parallelism:
            parallelism = max(1, (os.cpu_count() or 1) // cpus)
        self.parallelism = parallelism
        if cluster == "slurm":  # refused here, when the executor is built: before a run (or a suite's first) starts
            if shutil.which("sbatch") is None or shutil.which("srun") is None:
                raise SerbenchError("--executor slurm: no sbatch on PATH (not a Slurm login node?); "
                                    "-o executor.cluster=local runs the same tasks on this machine")
            self.ping()

    def gpus_for(self, device: str) -> int:
        """GPUs per task: as given, or (``gpus=-1``) one for a cuda run and none for a CPU run."""
        return self.gpus if self.gpus >= 0 else int(str(device).startswith("cuda"))

    def slots(self, units: int) -> int:
        return min(units, self.parallelism) if self.parallelism else units

    def ping(self) -> None:
        """``scontrol ping`` within ``connect_timeout`` seconds, or an error naming the controller
        (sbatch and sacct would otherwise wait on an unreachable one)."""
        if shutil.which("scontrol") is None:
            return
        try:
            done = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=self.connect_timeout)
        except subprocess.TimeoutExpired:
            raise SerbenchError(f"--executor slurm: the Slurm controller ({controller()}) did not answer scontrol ping "
                                f"within {self.connect_timeout:g} s (-o executor.connect_timeout)") from None
        answer = " ".join((done.stdout + done.stderr).split())[:200]
        if done.returncode != 0 or ("DOWN" in answer and "UP" not in answer):
            raise SerbenchError(f"--executor slurm: the Slurm controller ({controller()}) is not reachable: "
                                f"scontrol ping says {answer or f'nothing (exit {done.returncode})'!r}")

    def executor(self, run_dir: Path, gpus: int):
        try:
            import submitit
        except ImportError:
            raise SerbenchError("--executor slurm needs submitit: pip install 'serbench[slurm]'") from None
        if CONTROL.search(str(run_dir)):
            raise SerbenchError(f"--out {str(Path(run_dir).parent)!r}: holds a newline or another control character; "
                                "the run directory's path goes into the sbatch script")
        folder = Path(run_dir) / "slurm" / "%j"  # a task's id: ARRAY_INDEX on Slurm, a pid locally
        if self.cluster == "local":
            executor = submitit.LocalExecutor(folder=folder)
            executor.update_parameters(timeout_min=self.time, gpus_per_node=gpus, setup=self.setup)
            return executor
        executor = submitit.SlurmExecutor(folder=folder)
        params = {"time": self.time, "cpus_per_task": self.cpus, "job_name": f"serbench-{Path(run_dir).name}",
                  "setup": self.setup, "array_parallelism": self.parallelism or 256}  # submitit's default cap
        if gpus:
            params["gpus_per_node"] = gpus
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
        gpus = self.gpus_for(device)
        device = worker_device(device, gpus, "-o executor.gpus")
        executor = self.executor(run_dir, gpus)
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
