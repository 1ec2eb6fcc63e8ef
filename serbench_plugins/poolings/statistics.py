"""``std`` and ``attention``: statistics pooling, plain and attentive (Diatlova et al. 2024).

``std``: concat(mean, standard deviation) over valid frames. ``attention``: weights
w = softmax_t(p . tanh(z_t)) with a learnable vector p, then the weighted mean and weighted
standard deviation concatenated. Padded frames never enter a sum.
"""

from __future__ import annotations

import torch
from torch import nn

EPS = 1e-5


def weighted_mean_std(frames: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``weights`` [B, T] summing to 1 over valid frames (0 on padding) -> [B, 2D]."""
    w = weights.unsqueeze(-1)
    mean = (frames * w).sum(1)
    var = ((frames - mean.unsqueeze(1)) ** 2 * w).sum(1)
    return torch.cat([mean, torch.sqrt(var.clamp(min=EPS))], dim=-1)


class StdPooling(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.out_dim = 2 * dim

    def forward(self, frames: torch.Tensor, mask: torch.Tensor, batch: dict | None = None) -> torch.Tensor:
        weights = mask.to(frames.dtype)
        return weighted_mean_std(frames, weights / weights.sum(1, keepdim=True).clamp(min=1.0))


class AttentionPooling(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.out_dim = 2 * dim
        self.p = nn.Parameter(torch.randn(dim) / dim**0.5)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor, batch: dict | None = None) -> torch.Tensor:
        scores = torch.tanh(frames) @ self.p
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        return weighted_mean_std(frames, weights)
