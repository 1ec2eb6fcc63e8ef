"""The loss contract: a model's outputs and its batch to one scalar to minimise."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import torch

from serbench.api.batch import Batch


@runtime_checkable
class Loss(Protocol):
    """What ``register_losses`` factories build: ``factory(classes: list[str], train_counts:
    list[int], **params)`` returns a callable of this shape. ``train_counts`` are the training
    split's label counts in ``classes`` order, for class weights (never dev or test counts).

    ``loss(outputs, batch)``: ``outputs`` the downstream's dict (``logits`` ``[B, C]`` float
    always; a method may add its own keys, e.g. ``cosine`` for ``am_softmax`` or ``labels``
    ``[B']`` for rows it added to the batch); ``batch`` the :class:`~serbench.api.batch.Batch`
    (``labels`` ``[B]`` int64 class indices; ``attributes`` ``[B, 3]`` when the loss declared
    the ``attributes`` need with ``LossMeta(needs=...)``). Returns a 0-dim float tensor, mean
    over the batch, with gradients to ``outputs``.

    Padding does not reach a loss (its inputs are per utterance). Determinism: a pure
    function of its inputs; randomness (if any) from torch's generator, which the trainer seeds.
    """

    def __call__(self, outputs: Mapping[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        ...
