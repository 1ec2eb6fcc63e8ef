"""A third-party serbench loss: focal loss (Lin et al., ICCV 2017).

Each utterance's cross-entropy is scaled by (1 - p)^gamma, p the probability of its true
class, so confidently right utterances count less and hard ones more; ``gamma=0`` is plain
cross-entropy. Averaged over the batch. Lin et al. also weight classes (alpha); this plugin
leaves that out (its own choice: ``weighted_ce`` does class weighting).

    pip install ./examples/serbench-focal
    serbench run --upstream fbank --downstream superb --loss focal -o loss.gamma=2 --protocol synthetic
"""

from __future__ import annotations

import torch

from serbench.api import Param, Spec, hookimpl


class FocalLoss:
    def __init__(self, classes: list[str], train_counts: list[int], gamma: float):
        self.gamma = gamma

    def __call__(self, outputs: dict, batch: dict) -> torch.Tensor:
        log_p = torch.log_softmax(outputs["logits"].float(), dim=-1)
        log_p_true = log_p.gather(1, batch["labels"].unsqueeze(1)).squeeze(1)
        return (-(1 - log_p_true.exp()).pow(self.gamma) * log_p_true).mean()


@hookimpl
def register_losses():
    return [Spec(name="focal", factory=FocalLoss, summary="focal loss: cross-entropy scaled by (1 - p)^gamma (example plugin)",
                 params=(Param("gamma", float, 2.0, "focusing exponent (0: cross-entropy)", bounds=">= 0"),),
                 citation="Lin, Goyal, Girshick, He, Dollar. Focal Loss for Dense Object Detection. ICCV 2017.")]
