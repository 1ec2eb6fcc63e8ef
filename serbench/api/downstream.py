"""The downstream contract: what a downstream factory is given by the host, and the model it
returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from serbench.api.batch import Batch


@dataclass(frozen=True)
class DownstreamContext:
    """Input shape and task: ``num_layers`` hidden states of width ``dim`` at
    ``frame_rate`` Hz; ``make_pooling(dim)`` builds the chosen pooling for a given width;
    ``train_counts`` are the training split's label counts per class (for class balancing).
    ``loss`` names the chosen loss, for a method whose head depends on it (a cosine head for
    ``am_softmax``, a plain linear one for ``ce``).
    A model may define ``stages()`` (:mod:`serbench.api.stages`) to train in several steps."""

    num_layers: int
    dim: int
    frame_rate: float
    classes: tuple[str, ...]
    make_pooling: Callable[[int], nn.Module]
    train_counts: tuple[int, ...] = ()
    loss: str = ""


@runtime_checkable
class Downstream(Protocol):
    """What ``register_downstreams`` factories build: ``factory(context: DownstreamContext,
    **params)`` returns a ``torch.nn.Module`` of this shape.

    ``forward(batch)`` takes a :class:`~serbench.api.batch.Batch` and returns a dict with at
    least ``logits`` ``[B, C]`` (float, unnormalised, ``C = len(context.classes)`` in that
    order); a method may add keys for its loss. Frozen mode (the default): ``batch["features"]``
    ``[B, L, T, D]`` float32 holds the cached hidden states of the kept layers (``L =
    context.num_layers``), zero beyond ``batch["lengths"]``, with ``batch["mask"]`` ``[B, T]``.
    Fine-tuning (``DownstreamMeta(upstream="finetune")`` or ``-o upstream.finetune=true``): the
    host wraps the model with the encoder and computes those keys from ``batch["wavs"]`` itself.

    ``stages()`` (optional) -> list of :class:`~serbench.api.stages.Stage`, run per fold before
    the supervised training. Padding: an utterance's logits must not depend on its batch-mates
    (mask every reduction over frames). Determinism: parameters initialised from torch's
    generator, which the host seeds per (fold, seed) before building the model; no other
    source of randomness.
    """

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        ...
