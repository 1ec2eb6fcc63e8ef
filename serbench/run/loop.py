"""The one training loop: every stage of every method, and every supervised training, runs here.

A stage is data (:class:`serbench.api.stages.Stage`): what it trains, with which optimiser and
schedule, for how many epochs, in batches of what size, and its maths as ``step`` and hooks.
This module owns the rest, in one order that every training shares, so that a method's numbers
depend on its maths alone:

1. the stage's generator, seeded from the job's seed; ``before(inputs, generator)``;
2. the optimiser over ``parameters(model)`` and the per-step schedule;
3. per epoch: ``model.train()``, the batcher's epoch (training augmentation), length-bucketed
   batches drawn from the generator; per batch: the batch, ``step`` under autocast, then
   ``zero_grad``, ``backward``, gradient clipping, ``optimizer.step()``, ``scheduler.step()``,
   ``after_step()``;
4. after each epoch: the summed loss and the weights checked finite (one host sync per epoch),
   the optional dev :class:`Selection` (best weights kept, early stopping), progress.

No other module builds an optimiser or steps one (tests/run/test_loop.py checks the source).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from serbench.api.batch import bucketed
from serbench.api.errors import SerbenchError
from serbench.api.stages import OPTIMISERS, SCHEDULES, Optimiser, Schedule, Stage, StageInput

_TORCH_NAMES = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD"}


@dataclass
class Selection:
    """Dev selection, an option of the loop: ``score(epoch)`` after every epoch (higher is
    better; it may raise to stop the run), the best epoch's weights restored at the end, and
    training stopped after ``patience`` epochs without a better score."""

    score: Callable[[int], float]
    patience: int


@dataclass
class Trained:
    """What a stage's training did: the kept epoch (the best on dev under a selection, else the
    last), the epochs run and the dev scores of each epoch (empty without a selection)."""

    best_epoch: int = 0
    epochs_run: int = 0
    history: list[float] = field(default_factory=list)


def optimiser(groups: Sequence, spec: Optimiser) -> torch.optim.Optimizer:
    """torch's optimiser named by ``spec`` over ``groups`` (tensors or parameter groups)."""
    if spec.name not in OPTIMISERS:
        raise SerbenchError(f"optimiser {spec.name!r} is not one of {', '.join(OPTIMISERS)}")
    kwargs = {"lr": spec.lr, "weight_decay": spec.weight_decay}
    if spec.name == "sgd":
        kwargs["momentum"] = spec.momentum
    return getattr(torch.optim, _TORCH_NAMES[spec.name])(groups, **kwargs)


def schedule(optimizer: torch.optim.Optimizer, total_steps: int, spec: Schedule) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``spec.warmup_ratio`` of ``total_steps``, then constant or cosine to zero."""
    if spec.kind not in SCHEDULES:
        raise SerbenchError(f"schedule {spec.kind!r} is not one of {', '.join(SCHEDULES)}")
    warmup = int(round(spec.warmup_ratio * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if spec.kind == "constant":
            return 1.0
        progress = (step - warmup) / max(total_steps - warmup, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _check_finite(model: nn.Module, total: torch.Tensor, stage: Stage, epoch: int) -> None:
    where = f"epoch {epoch}" if stage.name == "supervised" else f"epoch {epoch} of stage {stage.name}"
    if not torch.isfinite(total):
        raise SerbenchError(f"training loss is {total.item()} at {where}: training diverged or the inputs hold "
                            "NaN/inf (lower train.lr, or check the features); nothing is scored")
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        raise SerbenchError(f"the weights turned NaN/inf in {where}: training diverged (lower train.lr); "
                            "nothing is scored")


def train(stage: Stage, inputs: StageInput, fetch: Callable[[list[str]], dict] | None = None,
          selection: Selection | None = None, on_epoch: Callable[[int, float], None] | None = None) -> Trained:
    """Train ``inputs.model`` in place through ``stage`` over ``inputs.ids``.

    ``fetch(ids)`` makes a training batch (default ``inputs.batcher(ids, train=stage.train_batches)``);
    ``on_epoch(epoch, dev score or nan)`` reports progress after every epoch."""
    model, ids = inputs.model, inputs.ids
    fetch = fetch or (lambda chunk: inputs.batcher(chunk, train=stage.train_batches))
    generator = torch.Generator().manual_seed(inputs.seed)
    if stage.before is not None:
        stage.before(inputs, generator)
    if stage.step is None:
        return Trained()
    groups = stage.parameters(model) if stage.parameters else [p for p in model.parameters() if p.requires_grad]
    optimizer = optimiser(groups, stage.optimiser)
    total_steps = stage.steps(len(ids))
    scheduler = schedule(optimizer, total_steps, stage.schedule)
    autocast = inputs.autocast()
    done, outcome, best_score, best_state = 0, Trained(), -math.inf, None
    for epoch in range(1, stage.epochs + 1):
        model.train()
        if hasattr(inputs.batcher, "set_epoch"):  # training augmentation draws another copy per epoch
            inputs.batcher.set_epoch(epoch)
        total = torch.zeros((), device=inputs.device)  # checked once per epoch: no host sync per batch
        for chunk in bucketed(ids, inputs.batcher.lengths(ids), stage.batch_size, generator, stage.bucket_batches):
            batch = fetch(chunk)
            with autocast:
                loss = stage.step(batch, generator, done / max(total_steps, 1))
            total += loss.detach().float()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if stage.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), stage.grad_clip)
            optimizer.step()
            scheduler.step()
            if stage.after_step is not None:
                stage.after_step()
            done += 1
        _check_finite(model, total, stage, epoch)
        outcome.epochs_run = epoch
        if selection is None:
            outcome.best_epoch = epoch
            if on_epoch:
                on_epoch(epoch, float("nan"))
            continue
        score = selection.score(epoch)
        outcome.history.append(score)
        if on_epoch:
            on_epoch(epoch, score)
        if score > best_score:
            best_score, outcome.best_epoch = score, epoch
            best_state = copy.deepcopy(model.state_dict())
        elif epoch - outcome.best_epoch >= selection.patience:
            break
    if selection is not None and best_state is not None:
        model.load_state_dict(best_state)
    return outcome
