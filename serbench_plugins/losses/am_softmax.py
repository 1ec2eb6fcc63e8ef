"""``am_softmax``: additive-margin softmax (Wang et al. 2018), as GMP-ATL uses it.

L = -log(e^{s(cos theta_y - m)} / (e^{s(cos theta_y - m)} + sum_{j != y} e^{s cos theta_j})),
theta_j the angle between the L2-normalised embedding and class j's normalised weight vector.
The model's outputs carry ``cosine`` [B, C] (see :class:`serbench.api.blocks.CosineClassifier`); its ``logits``
for prediction are s * cos theta.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from serbench.api.errors import SerbenchError


class AMSoftmax:
    def __init__(self, margin: float, scale: float):
        self.margin, self.scale = margin, scale

    def __call__(self, outputs: dict, batch: dict) -> torch.Tensor:
        if "cosine" not in outputs:
            raise SerbenchError("loss am_softmax needs a downstream that outputs cosine similarities ('cosine')")
        cosine = outputs["cosine"].float()
        margins = F.one_hot(batch["labels"], cosine.shape[1]).to(cosine.dtype) * self.margin
        return F.cross_entropy(self.scale * (cosine - margins), batch["labels"])


def make(classes: list[str], train_counts: list[int], margin: float, scale: float) -> AMSoftmax:
    return AMSoftmax(margin, scale)
