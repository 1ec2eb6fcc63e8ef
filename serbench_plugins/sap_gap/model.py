"""``sap_gap``: SAP+GAP, Hyeon, Oh & Choi, "Enhancing Speech Emotion Recognition through
Segmental Average Pooling of Self-Supervised Learning Features" (Interspeech 2024).

GAP(X) is the mean of all valid frames; SAP(X) the mean of multi-head self-attention outputs
over the frames voice activity detection marks as speech (see the ``segmental`` pooling).
SR(X) = concat(GAP, SAP) is projected to 32 dimensions and feeds a classifier and two
regressors (valence, arousal); the ``mtl`` loss trains all three.

Choices where the paper is silent, each a parameter: the frames come from the encoder's last
layer (``layer=last``; ``weighted`` learns a softmax over layers as SUPERB does); the 32-d
projection is Linear then ReLU; ``mode`` picks SR (the method), GAP or SAP alone, the paper's
three rows. The regressors' targets are the protocol's valence and arousal in [0, 1] (IEMOCAP's
1-5 ratings as (x - 1) / 4); the paper does not say how it scales them. In training: AdamW with
weight decay 0.01, gradient clipping at norm 5 and LayerDrop off when fine-tuning (the
harness's, none from the paper). The recipe record (``own_choices``) and ``serbench list
downstreams sap_gap`` name the same choices.
"""

from __future__ import annotations

import torch
from torch import nn

from serbench.api.blocks import LayerWeights, MeanPooling
from serbench.api.downstream import DownstreamContext
from serbench_plugins.sap_gap.segmental import SegmentalPooling


class SapGap(nn.Module):
    def __init__(self, context: DownstreamContext, mode: str, layer: str, projection: int, heads: int,
                 dropout: float, vad_aggressiveness: int):
        super().__init__()
        self.mode = mode
        self.layers = LayerWeights(context.num_layers) if layer == "weighted" else None
        dim = context.dim
        self.gap = MeanPooling(dim)
        self.sap = SegmentalPooling(dim, heads, dropout)
        width = {"sr": 2 * dim, "gap": dim, "sap": dim}[mode]
        self.project = nn.Sequential(nn.Linear(width, projection), nn.ReLU(), nn.Dropout(dropout))
        self.classifier = nn.Linear(projection, len(context.classes))
        self.valence = nn.Linear(projection, 1)
        self.arousal = nn.Linear(projection, 1)

    def forward(self, batch: dict) -> dict:
        features = batch["features"]
        frames = self.layers(features) if self.layers is not None else features[:, -1]
        parts = []
        if self.mode in ("sr", "gap"):
            parts.append(self.gap(frames, batch["mask"], batch))
        if self.mode in ("sr", "sap"):
            parts.append(self.sap(frames, batch["mask"], batch))
        z = self.project(torch.cat(parts, dim=-1))
        return {"logits": self.classifier(z), "valence": self.valence(z).squeeze(-1), "arousal": self.arousal(z).squeeze(-1)}
