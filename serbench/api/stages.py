"""The types of a training stage: what a stage declares as data and what it is handed.

Every training in serbench goes through one loop (``serbench.run.loop``): a method's extra
stages (an adapter's self-supervised stage, k-means pseudo-labels, an encoder's re-training)
and the supervised training of every downstream alike. A stage is data: which parameters it
trains, the optimiser, the learning-rate schedule, epochs, batch size, gradient clipping, the
splits it reads (``train`` and/or ``dev``, never ``test``) and whether it sees their labels,
plus the method's maths as callables: ``step`` (one batch to one loss), and optional hooks
``before`` (once, before the first epoch: a pass that is not gradient training) and
``after_step`` (after each optimiser step: an EMA teacher). The loop owns everything else:
seeding the generator, batching, ``zero_grad``/``backward``/clip/``step`` order, the
scheduler, autocast, non-finite checks, progress, and (through ``serbench.run.stages``) the
per-stage checkpoints a rerun resumes from. A method keeps only its maths; a downstream may
define ``stages() -> list[Stage]``, run per fold before the supervised training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from serbench.api.batch import bucketed

ALLOWED_SPLITS = ("train", "dev")
LABEL_KEYS = ("labels", "attributes")
OPTIMISERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class Optimiser:
    """The optimiser a stage trains with: ``name`` one of ``OPTIMISERS`` (torch's ``Adam``,
    ``AdamW``, ``SGD``), its learning rate and weight decay (``momentum`` for SGD only).
    A parameter group handed by ``Stage.parameters`` with its own ``lr`` keeps it."""

    name: str
    lr: float
    weight_decay: float = 0.0
    momentum: float = 0.0


@dataclass(frozen=True)
class Schedule:
    """The learning-rate factor per optimiser step: a linear warm-up over ``warmup_ratio`` of
    the stage's steps (step ``s`` < ``w`` gets ``(s + 1) / w``), then ``constant`` (1) or
    ``cosine`` (``0.5 (1 + cos(pi p))``, ``p`` the share of the steps after warm-up done, so it
    reaches 0 at the stage's last step). The steps are ``epochs x ceil(ids / batch_size)``."""

    kind: str = "constant"
    warmup_ratio: float = 0.0


@dataclass(frozen=True)
class Stage:
    """One training stage, as data.

    ``name`` (unique within the method; the saved state is named after it); ``splits`` it
    reads (a subset of ``ALLOWED_SPLITS``); ``labels`` whether it may see their labels
    (``labels`` and ``attributes``; ids, speakers, genders and audio or features it always
    sees). ``step(batch, generator, progress) -> loss`` is one training step's maths: a
    scalar tensor from one batch (the loop runs it under the training precision, then
    ``zero_grad``, ``backward``, clipping, the optimiser and the scheduler); ``generator`` is
    the stage's own, seeded from the job's seed (draw randomness only from it, or from torch's
    global generator, which the runner seeds per job); ``progress`` is the share of the
    stage's steps done before this one (0 at the first, < 1 at the last). ``step=None``: a
    stage of ``before`` alone (no optimiser is built).

    ``parameters(model)`` gives what the stage trains: tensors, or torch parameter groups
    (dicts with ``params`` and their own ``lr``); default every parameter that requires a
    gradient. ``optimiser``, ``schedule``, ``epochs``, ``batch_size``, ``grad_clip`` (the
    gradient norm over all the model's parameters; 0: none) and ``bucket_batches`` (batches
    drawn from length-sorted buckets of this many batches; 0: plain shuffling) say how.
    ``train_batches``: batches as training draws them (random crops, augmentation); false:
    whole utterances, as evaluation sees them (a stage whose frame targets must stay aligned).

    Hooks: ``before(StageInput, generator)`` runs once before the first epoch, on the same
    generator the steps then draw from (prototypes drawn from frames, a pseudo-label pass);
    ``after_step()`` after each optimiser and scheduler step (an EMA teacher)."""

    name: str
    splits: tuple[str, ...]
    labels: bool
    step: Callable[[dict, torch.Generator, float], torch.Tensor] | None = None
    optimiser: Optimiser = Optimiser("adam", 1e-3)
    schedule: Schedule = Schedule()
    epochs: int = 1
    batch_size: int = 32
    grad_clip: float = 0.0
    bucket_batches: int = 8
    train_batches: bool = True
    parameters: Callable[[torch.nn.Module], list] | None = None
    before: Callable[["StageInput", torch.Generator], None] | None = None
    after_step: Callable[[], None] | None = None

    def steps(self, n_ids: int) -> int:
        """Optimiser steps of the whole stage over ``n_ids`` utterances (the schedule's length)."""
        return self.epochs * -(-n_ids // self.batch_size)


@dataclass
class StageInput:
    """What a stage's ``before`` hook may touch: the ids of its declared splits, a guarded
    batcher, and the whole model being trained (in fine-tuning mode it holds the encoder as
    ``.upstream`` and runs it with ``.encode(batch)``).

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

