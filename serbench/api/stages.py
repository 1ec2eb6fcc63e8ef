"""The types of a multi-stage method: what a stage declares and what it is handed.

A downstream model may define ``stages() -> list[Stage]``: steps run per fold before the
supervised training (an adapter's self-supervised stage, k-means pseudo-labels, an encoder's
re-training). Each stage declares the splits it reads (``train`` and/or ``dev``, never
``test``) and whether it may see their utterance labels; the runner (``serbench.run.stages``)
hands it a :class:`StageInput` whose batcher refuses any other utterance and strips the labels
it did not declare, and saves the model's state after it, so a rerun resumes after the last
finished stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from serbench.api.batch import bucketed

ALLOWED_SPLITS = ("train", "dev")
LABEL_KEYS = ("labels", "attributes")


@dataclass(frozen=True)
class Stage:
    """One step of a multi-stage method: ``name`` (unique within the method; the saved state is
    named after it), ``splits`` it reads (a subset of ``ALLOWED_SPLITS``: ``train``, ``dev``),
    ``labels`` whether it may see their labels (``labels`` and ``attributes``; ids, speakers,
    genders and audio or features it always sees), and ``run(StageInput)``, which trains the
    model in place and returns nothing. Determinism: draw randomness only from
    ``StageInput.seed`` (``torch.Generator().manual_seed(seed)``)."""

    name: str
    splits: tuple[str, ...]
    labels: bool
    run: Callable[["StageInput"], None]


@dataclass
class StageInput:
    """What a stage may touch: the ids of its declared splits, a guarded batcher, and the
    whole model being trained (in fine-tuning mode it holds the encoder as ``.upstream``).

    ``batcher(ids, train=False)`` returns a :class:`~serbench.api.batch.Batch` of those ids
    (refusing any id outside the stage's splits, without labels unless the stage declared
    them); ``batcher.lengths(ids)`` their frames or samples; ``batches(size, generator)`` the
    ids in length-bucketed batches; ``autocast()`` the training precision; ``device`` where the
    model lives; ``seed`` the job's seed."""

    ids: tuple[str, ...]
    batcher: Callable[..., dict]
    device: torch.device
    seed: int
    model: torch.nn.Module
    bf16: bool = False

    def autocast(self):
        """The training steps' precision (``train.bf16``), for a stage's forward passes."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def batches(self, size: int, generator: torch.Generator | None = None, per_bucket: int = 8) -> list[list[str]]:
        """This stage's ids in length-bucketed, shuffled batches; without a generator, sorted
        by length for a pass that only computes (see serbench.api.batch.bucketed)."""
        return bucketed(self.ids, self.batcher.lengths(self.ids), size, generator, per_bucket)
