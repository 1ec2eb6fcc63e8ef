"""``mean``: masked average over valid frames."""

from __future__ import annotations

import torch
from torch import nn


class MeanPooling(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.out_dim = dim

    def forward(self, frames: torch.Tensor, mask: torch.Tensor, batch: dict | None = None) -> torch.Tensor:
        weights = mask.unsqueeze(-1).to(frames.dtype)
        return (frames * weights).sum(1) / weights.sum(1).clamp(min=1.0)
