"""The pooling contract: a padded batch of frames to one vector per utterance."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from serbench.api.batch import Batch


@runtime_checkable
class Pooling(Protocol):
    """What ``register_poolings`` factories build: ``factory(dim: int, **params)`` returns a
    ``torch.nn.Module`` with this shape.

    - ``out_dim`` (int): the width of the vector it returns (``dim`` for a mean, ``2 * dim``
      for mean and standard deviation).
    - ``forward(frames, mask, batch)``: ``frames`` ``[B, T, D]`` float32 (float or bfloat16
      under ``train.bf16``), zero beyond each utterance's length; ``mask`` ``[B, T]`` bool,
      true on valid frames; ``batch`` the :class:`~serbench.api.batch.Batch` (side information:
      speakers, a VAD mask...). Returns ``[B, out_dim]`` on ``frames``' device and dtype.

    Padding: an utterance's vector must not depend on the padding frames, i.e. on what it is
    batched with (mask every reduction; :class:`serbench.api.blocks.MeanPooling` and
    :func:`serbench.api.blocks.masked_self_attention` do). Determinism: no randomness outside
    the module's parameters and dropout (in training mode); ``serbench check-plugin pooling
    NAME`` checks shapes and batch independence.
    """

    out_dim: int

    def __call__(self, frames: torch.Tensor, mask: torch.Tensor, batch: Batch | None = None) -> torch.Tensor:
        ...
