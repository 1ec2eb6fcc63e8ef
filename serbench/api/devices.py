"""Devices: the names a user gives (``--device auto|cpu|cuda[:N]``) and the device a cluster
task gets. In the contract because executors pin their workers' devices with them."""

from __future__ import annotations

import torch

from serbench.api.errors import SerbenchError


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SerbenchError(
                f"--device {device}: CUDA is not available here (torch {torch.__version__}); "
                "use --device cpu or --device auto"
            )
        return torch.device(device)
    raise SerbenchError(f"--device {device!r}: expected auto, cpu or cuda[:N]")


def worker_device(run_device: str, gpus: float, option: str) -> str:
    """The device a cluster task runs on: ``cuda`` when it is given GPUs, else the CPU; a run
    on CUDA without GPUs per task is refused (the scheduler would hide them from the task)."""
    if gpus > 0:
        return "cuda"
    if run_device.startswith("cuda"):
        raise SerbenchError(f"--device {run_device} with {option}=0: the scheduler hides the GPUs from each task "
                            f"(CUDA_VISIBLE_DEVICES=''); set {option}=1, or --device cpu")
    return "cpu"
