"""What each plugin's output must be, checked where it is first produced, so that a wrong shape
or a NaN stops the run naming the plugin (and the package it comes from) instead of surfacing
as a traceback deep in another module, or not at all.

The checks are cheap (shapes, one ``isfinite`` per tensor) and run on every upstream batch and
on the first batch a downstream, its pooling and its loss see.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from serbench.api.errors import ContractError

FP16_MAX = 65504.0  # features are cached as float16 by default: larger values would become inf


def origin(obj: Any) -> str:
    """``ClassName from package.module``: where a plugin's object was defined."""
    kind = obj if isinstance(obj, type) else type(obj)
    return f"{kind.__name__} from {kind.__module__}"


def _finite(tensor: torch.Tensor, what: str) -> None:
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        bad = int((~torch.isfinite(tensor)).sum())
        raise ContractError(f"{what} holds {bad} NaN/inf values")


def check_upstream(out: Any, upstream: nn.Module, batch: int, name: str, peak_limit: float = FP16_MAX) -> None:
    """An upstream's ``forward`` result for ``batch`` waveforms: an ``UpstreamOutput`` whose
    ``hidden_states`` is ``[num_layers, batch, T, dim]``, finite and within float16's range
    (``peak_limit``: infinity when the features are kept as float32), and whose ``lengths`` is
    ``[batch]`` in ``1..T``."""
    from serbench.api.upstream import UpstreamOutput

    who = f"upstream {name} ({origin(upstream)})" if name else f"upstream {origin(upstream)}"
    if not isinstance(out, UpstreamOutput):
        raise ContractError(f"{who}: forward returned {type(out).__name__}, not serbench.api.upstream.UpstreamOutput")
    hidden, lengths = out.hidden_states, out.lengths
    if not isinstance(hidden, torch.Tensor) or hidden.dim() != 4:
        shape = list(hidden.shape) if isinstance(hidden, torch.Tensor) else type(hidden).__name__
        raise ContractError(f"{who}: hidden_states is {shape}, expected 4-D [layers, batch, frames, dim]")
    expected = (upstream.num_layers, batch, hidden.shape[2], upstream.dim)
    if tuple(hidden.shape) != expected:
        raise ContractError(f"{who}: hidden_states is {list(hidden.shape)}, expected [num_layers={upstream.num_layers}, "
                            f"batch={batch}, frames, dim={upstream.dim}] (num_layers and dim as the upstream declares)")
    if not isinstance(lengths, torch.Tensor) or tuple(lengths.shape) != (batch,):
        raise ContractError(f"{who}: lengths must be a tensor [batch={batch}] of valid frames per utterance")
    if bool((lengths < 1).any()) or bool((lengths > hidden.shape[2]).any()):
        raise ContractError(f"{who}: lengths {lengths.tolist()} are outside 1..{hidden.shape[2]} (the frames it returned)")
    _finite(hidden, f"{who}: hidden_states")
    peak = float(hidden.detach().abs().max()) if hidden.numel() else 0.0
    if peak > peak_limit:
        raise ContractError(f"{who}: hidden_states reach {peak:.3g}, beyond float16's range ({FP16_MAX:.0f}): "
                            "normalise them (or -o cache.dtype=float32)")


def pooling_out_dim(module: nn.Module, name: str) -> int:
    """A pooling's declared ``out_dim``: a positive int (the width of what it returns)."""
    out_dim = getattr(module, "out_dim", None)
    if not isinstance(out_dim, int) or isinstance(out_dim, bool) or out_dim < 1:
        raise ContractError(f"pooling {name} ({origin(module)}): out_dim is {out_dim!r}, "
                            "expected a positive int (the width of what it returns)")
    return out_dim


def check_pooling(output: Any, module: nn.Module, batch: int, name: str, finite_input: bool = True) -> None:
    """A pooling's ``forward`` result for ``batch`` utterances: ``[batch, out_dim]``, finite when
    its input was (NaN in, NaN out is not the pooling's fault)."""
    who = f"pooling {name} ({origin(module)})"
    out_dim = pooling_out_dim(module, name)
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != (batch, out_dim):
        shape = list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ContractError(f"{who}: returned {shape}, expected [batch, out_dim={out_dim}] (its declared out_dim, batch={batch})")
    if finite_input:
        _finite(output, who)


def check_pooling_once(module: nn.Module, name: str) -> nn.Module:
    """Check the first output of a pooling built for a downstream (:func:`check_pooling`)."""
    def hook(_module, inputs, output):
        handle.remove()
        frames = inputs[0]
        finite = not (isinstance(frames, torch.Tensor) and frames.is_floating_point()) or bool(torch.isfinite(frames).all())
        check_pooling(output, module, int(frames.shape[0]), name, finite)

    pooling_out_dim(module, name)
    handle = module.register_forward_hook(hook)
    return module


def check_downstream(out: Any, model: nn.Module, batch: Mapping[str, Any], classes: int, name: str) -> torch.Tensor:
    """A downstream's ``forward(batch)``: a dict whose ``logits`` is a finite ``[B, classes]``."""
    who = f"downstream {name} ({origin(model)})"
    size = len(batch["ids"]) if "ids" in batch else int(batch["labels"].shape[0])
    if not isinstance(out, Mapping) or "logits" not in out:
        raise ContractError(f"{who}: forward returned {type(out).__name__}, expected a dict with 'logits'")
    logits = out["logits"]
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (size, classes):
        shape = list(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ContractError(f"{who}: logits are {shape}, expected [batch={size}, classes={classes}]")
    _finite(logits, f"{who}: logits")
    return logits


def check_loss(value: Any, loss: Any, name: str) -> None:
    """A loss's value: a finite scalar tensor."""
    who = f"loss {name} ({origin(loss)})"
    if not isinstance(value, torch.Tensor) or value.dim() != 0:
        shape = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ContractError(f"{who}: returned {shape}, expected a scalar tensor")
    _finite(value, who)
