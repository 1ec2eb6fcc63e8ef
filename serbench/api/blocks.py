"""Building blocks that several plugins share, kept in the contract so that a plugin imports only
``serbench.api`` (never another plugin's module): layer weighting, masked pooling, masked
self-attention, a cosine classifier, inverse-frequency class weights, gender indices."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

GENDER_INDEX = {"F": 0, "M": 1}  # anything else: 2 (unknown)


class LayerWeights(nn.Module):
    """Softmax-normalised learnable weights over the upstream's hidden states."""

    def __init__(self, num_layers: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_layers))

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # [B, L, T, D] -> [B, T, D]
        weights = torch.softmax(self.logits, dim=0)
        return torch.einsum("l,bltd->btd", weights, features)


class MeanPooling(nn.Module):
    """``mean``: masked average over valid frames."""

    def __init__(self, dim: int):
        super().__init__()
        self.out_dim = dim

    def forward(self, frames: torch.Tensor, mask: torch.Tensor, batch: dict | None = None) -> torch.Tensor:
        weights = mask.unsqueeze(-1).to(frames.dtype)
        return (frames * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class CosineClassifier(nn.Module):
    """cos theta between normalised embeddings and normalised class weights."""

    def __init__(self, dim: int, classes: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(classes, dim) / dim**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) @ F.normalize(self.weight, dim=-1).T


def inverse_frequency(train_counts: list[int]) -> list[float]:
    """weight_c = N / (C * n_c): a class seen half as often counts twice as much; a class
    absent from training gets weight 0 (it contributes no term anyway)."""
    total, num = sum(train_counts), len(train_counts)
    return [total / (num * n) if n else 0.0 for n in train_counts]


def gender_ids(genders: list, device) -> torch.Tensor:
    """0 female, 1 male, 2 unknown."""
    return torch.tensor([GENDER_INDEX.get(g, 2) for g in genders], device=device)


def masked_self_attention(qkv: torch.Tensor, valid: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head self-attention over the valid frames of a padded batch: ``qkv`` [B, T, 3D]
    (queries, keys, values side by side), ``valid`` [B, T] -> [B, T, D].

    Through ``scaled_dot_product_attention`` with an additive mask: padding frames are never
    attended to. No dropout on the attention weights: on a CPU it forces torch's reference
    kernel, about 3x slower; plugins put their dropout on the output instead."""
    b, t, three_d = qkv.shape
    d = three_d // 3
    q, k, v = (x.view(b, t, heads, d // heads).transpose(1, 2) for x in qkv.chunk(3, -1))
    bias = torch.zeros(valid.shape, dtype=q.dtype, device=q.device).masked_fill(~valid, float("-inf"))
    attended = F.scaled_dot_product_attention(q, k, v, attn_mask=bias[:, None, None, :])
    return attended.transpose(1, 2).reshape(b, t, d)
