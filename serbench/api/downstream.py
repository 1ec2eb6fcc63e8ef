"""What a downstream factory is given by the host."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class DownstreamContext:
    """Input shape and task: ``num_layers`` hidden states of width ``dim`` at
    ``frame_rate`` Hz; ``make_pooling(dim)`` builds the chosen pooling for a given width;
    ``train_counts`` are the training split's label counts per class (for class balancing).
    ``loss`` names the chosen loss, for a method whose head depends on it (a cosine head for
    ``am_softmax``, a plain linear one for ``ce``).
    A model may define ``stages()`` (see :mod:`serbench.run.stages`) to train in several steps."""

    num_layers: int
    dim: int
    frame_rate: float
    classes: tuple[str, ...]
    make_pooling: Callable[[int], nn.Module]
    train_counts: tuple[int, ...] = ()
    loss: str = ""
