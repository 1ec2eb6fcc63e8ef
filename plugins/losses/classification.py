"""``ce`` and ``weighted_ce``: cross-entropy on the emotion logits."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from serbench.hookspecs import hookimpl
from serbench.specs import Spec


class CrossEntropy:
    """Cross-entropy on ``outputs['logits']``; ``weights`` rebalance classes when given."""

    def __init__(self, weights: list[float] | None = None):
        self.weights = None if weights is None else torch.tensor(weights, dtype=torch.float32)

    def __call__(self, outputs: dict, batch: dict) -> torch.Tensor:
        logits = outputs["logits"]
        weight = None if self.weights is None else self.weights.to(logits.device)
        return F.cross_entropy(logits, batch["labels"], weight=weight)


def inverse_frequency(train_counts: list[int]) -> list[float]:
    """weight_c = N / (C * n_c): a class seen half as often counts twice as much; a class
    absent from training gets weight 0 (it contributes no term anyway)."""
    total, num = sum(train_counts), len(train_counts)
    return [total / (num * n) if n else 0.0 for n in train_counts]


def make_ce(classes: list[str], train_counts: list[int]) -> CrossEntropy:
    return CrossEntropy()


def make_weighted_ce(classes: list[str], train_counts: list[int]) -> CrossEntropy:
    return CrossEntropy(inverse_frequency(train_counts))


@hookimpl
def register_losses() -> list[Spec]:
    return [
        Spec(name="ce", factory=make_ce, summary="cross-entropy"),
        Spec(
            name="weighted_ce",
            factory=make_weighted_ce,
            summary="cross-entropy with class weights N / (C * n_c) from the training split",
        ),
    ]
