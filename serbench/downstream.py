"""What a downstream factory is given by the host."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class DownstreamContext:
    """Input shape and task: ``num_layers`` hidden states of width ``dim`` at
    ``frame_rate`` Hz; ``make_pooling(dim)`` builds the chosen pooling for a given width."""

    num_layers: int
    dim: int
    frame_rate: float
    classes: tuple[str, ...]
    make_pooling: Callable[[int], nn.Module]
