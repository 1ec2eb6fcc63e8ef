"""Multi-stage methods: stages run per fold before the supervised training, with fold hygiene.

A downstream model may define ``stages() -> list[Stage]``. Each stage declares the splits it
reads (``train`` and/or ``dev``; never ``test``) and whether it may see their utterance
labels. The runner trains each stage through the one training loop (:mod:`serbench.run.loop`)
with a :class:`StageInput` whose batcher refuses any other utterance and strips labels the
stage did not declare, then saves the model's state after the stage under the run directory,
so a rerun resumes after the last finished stage.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path

import torch

from serbench.api.atomic import temporary
from serbench.api.errors import SerbenchError
from serbench.api.stages import ALLOWED_SPLITS, LABEL_KEYS, Stage, StageInput
from serbench.run import loop


class GuardedBatcher:
    """Batches of allowed ids only; labels removed unless the stage declared them."""

    def __init__(self, batcher: Callable[..., dict], allowed: Sequence[str], labels: bool, stage: str):
        self.batcher, self.allowed, self.labels, self.stage = batcher, set(allowed), labels, stage
        self.seen: set[str] = set()

    def _check(self, ids: Sequence[str]) -> None:
        outside = [i for i in ids if i not in self.allowed]
        if outside:
            raise SerbenchError(f"stage {self.stage} asked for utterance {outside[0]}, outside the splits it declared")

    def lengths(self, ids: Sequence[str]) -> list[int]:
        """Frames (features) or samples (audio) per utterance, for length-bucketed batches."""
        self._check(ids)
        return self.batcher.lengths(ids)

    def __call__(self, ids: Sequence[str], train: bool = False) -> dict:
        self._check(ids)
        self.seen.update(ids)
        batch = self.batcher(ids, None, train=train)
        if not self.labels:
            batch = {k: v for k, v in batch.items() if k not in LABEL_KEYS}
        return batch


def check(stages: Sequence[Stage], method: str) -> None:
    for stage in stages:
        bad = [s for s in stage.splits if s not in ALLOWED_SPLITS]
        if bad:
            raise SerbenchError(
                f"stage {stage.name} of {method} declares it reads {bad[0]!r}: refused (stages may read train and dev only)"
            )


def _saved_state(path: Path, model: torch.nn.Module, device: torch.device) -> tuple[dict | None, str]:
    """A stage checkpoint's state dict when it fits ``model`` exactly (same keys, shapes and
    dtypes), else (None, why): a truncated, tampered or stale file is recomputed, never half-loaded."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # weights_only refuses anything but tensors; damage raises many types
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    expected = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected):
        return None, "not this model's state"
    for key, value in expected.items():
        if not isinstance(state[key], torch.Tensor) or state[key].shape != value.shape or state[key].dtype != value.dtype:
            return None, f"{key} does not fit"
    return state, ""


def run_stages(model: torch.nn.Module, stages: Sequence[Stage], splits: dict[str, Sequence[str]], batcher,
               device: torch.device, seed: int, folder: Path, method: str, report: Callable[[str], None],
               task=None, bf16: bool = False) -> dict[str, set]:
    """Run (or resume) every stage; returns the ids each stage was fed. ``task(description,
    total)`` is the reporter's progress-bar context (one bar per stage, advanced per epoch)."""
    check(stages, method)
    seen = {}
    for number, stage in enumerate(stages, start=1):
        path = folder / f"{number}-{stage.name}.pt"
        if path.exists():
            state, problem = _saved_state(path, model, device)
            if state is not None:
                model.load_state_dict(state)
                report(f"stage {stage.name}: resumed from {path}")
                continue
            report(f"stage {stage.name}: {path} cannot be used ({problem}); computing the stage again")
        ids = tuple(i for split in stage.splits for i in splits[split])
        guard = GuardedBatcher(batcher, ids, stage.labels, stage.name)
        bar = f"stage {number}/{len(stages)}: {stage.name}"
        with task(bar, max(stage.epochs, 1), announce=False) if task else nullcontext(lambda n=1: None) as advance:
            trained = loop.train(stage, StageInput(ids, guard, device, seed, model, bf16),
                                 on_epoch=lambda epoch, _: advance(1))
            if not trained.epochs_run:  # a stage of its before hook alone
                advance(1)
        seen[stage.name] = guard.seen
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = temporary(path)
        os.close(fd)
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, path)
        report(f"stage {stage.name}: done, saved {path}")
    return seen
