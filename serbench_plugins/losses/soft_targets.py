"""``soft_ce``: class-balanced cross-entropy against the raters' label distribution.

As EMO-SUPERB trains (Wu et al., arXiv:2402.13018; the authors' code,
``class_balanced_softmax_cross_entropy_with_softtarget`` in ``emo-superb/expert.py``): for an
utterance with rater distribution t and predicted log-probabilities log p, the loss is
w(t) * sum_c -t_c log p_c, where w(t) = sum_c w_c t_c mixes the class-balanced weights of
:func:`serbench.api.soft_labels.class_balanced_weights` by the raters' shares; the batch loss is
the mean over utterances. ``balanced=false`` drops the weights (their plain soft
cross-entropy). The weights come from the training split's distributions (the fold's train,
or train and dev under ``train.select_split=none``).

serbench's choices, not the paper's: the distributions are the raters' vote shares as the
protocol reads them, not smoothed (EMO-SUPERB's released label files spread 5% of the mass
over all classes); a class no training utterance chose counts as chosen once.
"""

from __future__ import annotations

import numpy as np
import torch

from serbench.api.errors import SerbenchError
from serbench.api.soft_labels import class_balanced_weights


class SoftCrossEntropy:
    def __init__(self, weights: np.ndarray | None):
        self.weights = None if weights is None else torch.tensor(weights, dtype=torch.float32)

    def __call__(self, outputs: dict, batch: dict) -> torch.Tensor:
        logits = outputs["logits"]
        if "soft_labels" not in batch:
            raise SerbenchError("soft_ce: the batch has no rater distributions (soft_labels): a protocol without rater "
                                "labels, or train.shuffle_labels (shuffled labels carry no distributions)")
        target = batch["soft_labels"].to(logits.device, torch.float32)
        if target.shape != logits.shape:
            raise SerbenchError(f"soft_ce: the model returned {logits.shape[0]} rows of logits for {target.shape[0]} "
                                "utterances (a model that augments its batch, as wap_la does, has no distribution for "
                                "the added rows); use a majority-label loss with this downstream")
        per_utterance = -(target * torch.log_softmax(logits.float(), dim=-1)).sum(-1)
        if self.weights is not None:
            per_utterance = per_utterance * (target @ self.weights.to(logits.device))
        return per_utterance.mean()


def make_soft_ce(classes: list[str], train_counts: list[int], balanced: bool,
                 train_distributions: np.ndarray | None = None) -> SoftCrossEntropy:
    if train_distributions is None:
        raise SerbenchError("soft_ce: the training utterances have no rater distributions (IEMOCAP / MSP-Podcast: "
                            "-o protocol.rater_labels=true; csv: soft_<class> columns)")
    return SoftCrossEntropy(class_balanced_weights(np.asarray(train_distributions, dtype=np.float64)) if balanced else None)
