"""Extraction precision (``-o upstream.precision=auto|fp32|bf16``): the numeric precision of
the frozen encoder's forward pass while features are extracted.

It is not the training precision (``train.bf16``, the head's training steps, and the encoder's
too when it is fine-tuned): extraction happens once per utterance and its output is cached, so
its precision is part of the feature cache's key (:class:`serbench.run.cache.CacheKey`) and of
the result's comparability key (:func:`serbench.report.results.comparability`). ``auto`` keeps
what serbench did before the option existed: bf16 autocast on CUDA, fp32 on the CPU (so no
cache folder or run id changes). ``bf16`` on a CPU pays where it has bf16 matrix units (AVX512-BF16,
AMX); it is refused where the device has no bf16 support, and for an upstream that computes no
neural forward (it declares which precisions it supports: :attr:`serbench.api.upstream.Upstream.precisions`).
"""

from __future__ import annotations

import torch

from serbench.api.errors import SerbenchError

CHOICES = ("auto", "fp32", "bf16")
DEFAULT = "auto"


def device_default(device: torch.device) -> str:
    """What ``auto`` means on ``device``: bf16 on CUDA, fp32 elsewhere (serbench's behaviour
    before the option existed)."""
    return "bf16" if device.type == "cuda" else "fp32"


def resolve(choice: str, device: torch.device) -> str:
    """The precision in force, ``fp32`` or ``bf16``."""
    return device_default(device) if choice == DEFAULT else choice


def in_force(ws) -> str:
    """The precision a workspace's (serbench.run.job.Workspace) frozen extraction runs in."""
    return resolve(ws.host["precision"], ws.plan.device)


def device_supports_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 matrix products natively (the seam tests replace to
    simulate a device without bf16). On the CPU this is oneDNN's own check, the one its bf16
    kernels use (AVX512 with BF16 or AMX; without it bf16 is emulated, slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def check(choice: str, device: torch.device, upstream, name: str) -> str:
    """The precision in force for extracting with ``upstream`` (registered as ``name``) on
    ``device``; refused in one line where an explicit choice cannot be honoured."""
    if choice not in CHOICES:
        raise SerbenchError(f"-o upstream.precision={choice}: expected one of {', '.join(CHOICES)}")
    if choice == DEFAULT:
        return resolve(choice, device)
    supported = tuple(getattr(upstream, "precisions", ("fp32",)))
    if choice not in supported:
        raise SerbenchError(f"-o upstream.precision={choice}: upstream {name} computes in {', '.join(supported)} only "
                            "(it runs no neural forward to autocast); leave upstream.precision out")
    if choice == "bf16" and not device_supports_bf16(device):
        what = ("this GPU has no bf16 support (torch.cuda.is_bf16_supported() is false)" if device.type == "cuda"
                else "this CPU has no bf16 support (oneDNN reports none: it needs AVX512-BF16 or AMX)"
                if device.type == "cpu" else f"bf16 extraction is supported on cpu and cuda devices, not {device.type}")
        raise SerbenchError(f"-o upstream.precision=bf16 on {device}: {what}; use upstream.precision=fp32 or auto")
    return choice


def cache_field(precision: str, device: torch.device) -> str:
    """:attr:`serbench.run.cache.CacheKey.precision`: '' when ``precision`` is the device's default,
    so that folders written before the option keep their names, else the precision."""
    return "" if precision == device_default(device) else precision


def autocast(precision: str, device: torch.device):
    """The context the encoder's forward runs in: bf16 autocast, or autocast switched off for
    fp32 (also inside a caller's own autocast)."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)
