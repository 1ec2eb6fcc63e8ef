"""``ce``, ``weighted_ce`` and ``label_smoothing``: cross-entropy on the emotion logits.

Targets are ``outputs['labels']`` when the model returns them (a model that adds augmented
rows to its batch, as WAP-LA does, labels them), else ``batch['labels']``."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from serbench.blocks import inverse_frequency


class CrossEntropy:
    """Cross-entropy on ``outputs['logits']``; ``weights`` rebalance classes when given;
    ``smoothing`` = gamma takes that much target mass from the true class and spreads it
    evenly over the *other* classes (1 - gamma on the true class, gamma / (K - 1) on each
    other one), as Diatlova et al. describe it; torch spreads its own parameter over all K
    classes, so it is given gamma K / (K - 1)."""

    def __init__(self, weights: list[float] | None = None, smoothing: float = 0.0):
        self.weights = None if weights is None else torch.tensor(weights, dtype=torch.float32)
        self.smoothing = smoothing

    def __call__(self, outputs: dict, batch: dict) -> torch.Tensor:
        logits = outputs["logits"]
        weight = None if self.weights is None else self.weights.to(logits.device)
        classes = logits.shape[-1]
        spread = self.smoothing * classes / (classes - 1) if self.smoothing and classes > 1 else 0.0
        labels = outputs.get("labels", batch["labels"])
        return F.cross_entropy(logits, labels, weight=weight, label_smoothing=spread)


def make_ce(classes: list[str], train_counts: list[int]) -> CrossEntropy:
    return CrossEntropy()


def make_weighted_ce(classes: list[str], train_counts: list[int]) -> CrossEntropy:
    return CrossEntropy(inverse_frequency(train_counts))


def make_label_smoothing(classes: list[str], train_counts: list[int], smoothing: float, weighted: bool) -> CrossEntropy:
    return CrossEntropy(inverse_frequency(train_counts) if weighted else None, smoothing)
