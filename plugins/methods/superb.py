"""``superb``: the SUPERB emotion-recognition head (Yang et al., Interspeech 2021).

Softmax-weighted sum of all upstream layers (learnable), Linear(D -> hidden), pooling over
time (masked mean by default), Linear(hidden -> classes). As in s3prl's emotion recipe there
is no non-linearity: the head measures what the frozen features make linearly available.
"""

from __future__ import annotations

import torch
from torch import nn

from serbench.downstream import DownstreamContext


class LayerWeights(nn.Module):
    """Softmax-normalised learnable weights over the upstream's hidden states."""

    def __init__(self, num_layers: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_layers))

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # [B, L, T, D] -> [B, T, D]
        weights = torch.softmax(self.logits, dim=0)
        return torch.einsum("l,bltd->btd", weights, features)


class SuperbHead(nn.Module):
    def __init__(self, context: DownstreamContext, hidden: int = 256):
        super().__init__()
        self.layers = LayerWeights(context.num_layers)
        self.project = nn.Linear(context.dim, hidden)
        self.pooling = context.make_pooling(hidden)
        self.classifier = nn.Linear(self.pooling.out_dim, len(context.classes))

    def forward(self, batch: dict) -> dict:
        frames = self.project(self.layers(batch["features"]))
        pooled = self.pooling(frames, batch["mask"], batch)
        return {"logits": self.classifier(pooled)}
