"""``sap_stat``: statistical attentive pooling of WAP-LA (Song et al.).

A 1x1 convolution over time (a Linear on each frame) with a softmax over valid frames gives K
attention heads A [T, K]; mu = Z^T A and sigma^2 = (Z * Z)^T A - mu * mu, each L2-normalised,
concatenated ([2 * D * K]). The paper's Eq. 7 prints a different expression for sigma^2; it
is read as a typo for the attention-weighted variance written here.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class StatisticalAttentivePooling(nn.Module):
    def __init__(self, dim: int, heads: int = 4):
        super().__init__()
        self.attention = nn.Linear(dim, heads)
        self.out_dim = 2 * dim * heads

    def forward(self, frames: torch.Tensor, mask: torch.Tensor, batch: dict | None = None) -> torch.Tensor:
        scores = self.attention(frames).masked_fill(~mask.unsqueeze(-1), float("-inf"))
        weights = torch.softmax(scores, dim=1)  # [B, T, K]
        mu = torch.einsum("btd,btk->bdk", frames, weights)
        var = torch.einsum("btd,btk->bdk", frames * frames, weights) - mu * mu
        return torch.cat([F.normalize(mu.flatten(1), dim=-1), F.normalize(var.flatten(1), dim=-1)], dim=-1)
