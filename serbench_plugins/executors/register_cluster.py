"""Registers the ``slurm`` and ``ray`` executors: specs only; their implementations
(:mod:`serbench_plugins.executors.slurm`, :mod:`serbench_plugins.executors.ray_cluster`) and
submitit / Ray (the optional extras ``serbench[slurm]``, ``serbench[ray]``) are imported only
when one is built."""

from __future__ import annotations

from serbench.api import Param, Spec, hookimpl


@hookimpl
def register_executors() -> list[Spec]:
    return [
        Spec(
            name="slurm",
            factory="serbench_plugins.executors.slurm:SlurmExecutor",
            summary="a Slurm job array through submitit (pip install 'serbench[slurm]'); cluster=local to try it here",
            params=(
                Param("cluster", str, "slurm", "slurm, or local: submitit's local executor", ("slurm", "local")),
                Param("partition", str, "", "Slurm partition (empty: the cluster's default)"),
                Param("gpus", int, -1, "GPUs per task (-1: follow --device, one for a cuda run, none for a CPU run; "
                      "0: the task runs on the CPU)", bounds=">= -1"),
                Param("cpus", int, 8, "CPUs per task (torch threads)", bounds=">= 1"),
                Param("mem_gb", int, 0, "memory per task in GB (0: the partition's default)", bounds=">= 0"),
                Param("time", int, 240, "minutes a task may run", bounds=">= 1"),
                Param("account", str, "", "Slurm account to charge (empty: your default)"),
                Param("parallelism", int, 0, "tasks running at once (0: Slurm's 256; local: cores / cpus)", bounds=">= 0"),
                Param("setup", str, "", "shell lines run before each task, separated by ';' (module load ...; "
                      "source venv/bin/activate); from the command line only"),
                Param("poll", float, 1.0, "seconds between looks at running local tasks", bounds="> 0"),
                Param("connect_timeout", float, 30.0, "seconds scontrol ping may take before the controller is "
                      "called unreachable", bounds="> 0"),
            ),
            version="2",
        ),
        Spec(
            name="ray",
            factory="serbench_plugins.executors.ray_cluster:RayExecutor",
            summary="one Ray task per unit, on $RAY_ADDRESS or a local Ray (pip install 'serbench[ray]')",
            params=(
                Param("address", str, "", "Ray cluster address (empty: $RAY_ADDRESS, else start a local Ray)"),
                Param("num_cpus", float, 1.0, "CPUs per task (its torch threads)", bounds="> 0"),
                Param("num_gpus", float, 0.0, "GPUs per task (> 0: the task runs on cuda)", bounds=">= 0"),
                Param("max_retries", int, 1, "times a task that raised or whose worker died is retried", bounds=">= 0"),
                Param("local_cpus", int, 0, "CPUs of a Ray started here (0: all cores)", bounds=">= 0"),
                Param("connect_timeout", float, 30.0, "seconds the cluster at address may take to answer (TCP and "
                      "gRPC handshake) before it is called unreachable", bounds="> 0"),
            ),
            version="1",
        ),
    ]
