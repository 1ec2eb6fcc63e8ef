"""``superb``: the SUPERB emotion-recognition head (Yang et al., Interspeech 2021).

Softmax-weighted sum of all upstream layers (learnable), Linear(D -> hidden), pooling over
time (masked mean by default), Linear(hidden -> classes). As in s3prl's emotion recipe there
is no non-linearity: the head measures what the frozen features make linearly available.
"""

from __future__ import annotations

from torch import nn

from serbench.api.blocks import LayerWeights
from serbench.api.downstream import DownstreamContext


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
