"""``ce``, ``weighted_ce`` and ``label_smoothing``: cross-entropy on the emotion logits.

Targets are ``outputs['labels']`` when the model returns them (a model that adds augmented
rows to its batch, as WAP-LA does, labels them), else ``batch['labels']``."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from serbench.api.blocks import inverse_frequency


class CrossEntropy:
    """Cross-entropy on ``outputs['logits']``; ``weights`` rebalance classes when given;
    ``smoothing`` = gamma takes that much target mass from the true class and spreads it
    evenly over the *other* classes (1 - gamma on the true class, gamma / (K - 1) on each
    other one), as Diatlova et al. describe it.

    With both, each utterance's smoothed cross-entropy is weighted by the weight of *its own*
    class and the batch is normalised by the sum of those weights, exactly as ``weighted_ce``
    weights utterances: L = sum_i w_{y_i} sum_c q_ic (-log p_ic) / sum_i w_{y_i}. torch's
    ``cross_entropy(weight=w, label_smoothing=...)`` instead weights each smoothed term by the
    weight of the class it points at, which pulls the targets towards rare classes; it is not
    used with weights (version 3 of label_smoothing; version 2 did)."""

    def __init__(self, weights: list[float] | None = None, smoothing: float = 0.0):
        self.weights = None if weights is None else torch.tensor(weights, dtype=torch.float32)
        self.smoothing = smoothing

    def __call__(self, outputs: dict, batch: dict) -> torch.Tensor:
        logits = outputs["logits"]
        labels = outputs.get("labels", batch["labels"])
        weight = None if self.weights is None else self.weights.to(logits.device)
        classes = logits.shape[-1]
        if not self.smoothing or classes < 2:
            return F.cross_entropy(logits, labels, weight=weight)
        log_p = torch.log_softmax(logits.float(), dim=-1)
        other = self.smoothing / (classes - 1)
        target = torch.full_like(log_p, other).scatter(1, labels[:, None], 1.0 - self.smoothing)
        per_utterance = -(target * log_p).sum(-1)
        if weight is None:
            return per_utterance.mean()
        w = weight.float()[labels]
        return (w * per_utterance).sum() / w.sum()


def make_ce(classes: list[str], train_counts: list[int]) -> CrossEntropy:
    return CrossEntropy()


def make_weighted_ce(classes: list[str], train_counts: list[int]) -> CrossEntropy:
    return CrossEntropy(inverse_frequency(train_counts))


def make_label_smoothing(classes: list[str], train_counts: list[int], smoothing: float, weighted: bool) -> CrossEntropy:
    return CrossEntropy(inverse_frequency(train_counts) if weighted else None, smoothing)
