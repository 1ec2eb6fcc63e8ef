"""``mtl``: emotion class plus valence and arousal regression (Hyeon et al. 2024).

L = a * CE_w(logits, class) + b * MAE(valence) + c * MAE(arousal), with class weights
N / (C * n_c) from the training split and a = 0.5, b = c = 0.25 by default. The model's
outputs carry ``valence`` and ``arousal`` [B]; the batch carries ``attributes`` [B, 3]
(valence, arousal, dominance in [0, 1]) from the protocol.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from serbench.api.blocks import inverse_frequency
from serbench.api.errors import SerbenchError


class MultiTask:
    def __init__(self, weights: list[float], ce: float, valence: float, arousal: float):
        self.weights = torch.tensor(weights, dtype=torch.float32)
        self.ce, self.valence, self.arousal = ce, valence, arousal

    def __call__(self, outputs: dict, batch: dict) -> torch.Tensor:
        if "attributes" not in batch:
            raise SerbenchError("loss mtl needs valence and arousal labels, and this protocol's utterances have none")
        logits = outputs["logits"]
        targets = batch["attributes"].to(logits.dtype)
        loss = self.ce * F.cross_entropy(logits, batch["labels"], weight=self.weights.to(logits.device))
        loss = loss + self.valence * F.l1_loss(outputs["valence"].float(), targets[:, 0].float())
        return loss + self.arousal * F.l1_loss(outputs["arousal"].float(), targets[:, 1].float())


def make(classes: list[str], train_counts: list[int], ce: float, valence: float, arousal: float) -> MultiTask:
    return MultiTask(inverse_frequency(train_counts), ce, valence, arousal)
