"""Multi-head self-attention over the valid frames of a padded batch, for plugins that need it.

Through ``scaled_dot_product_attention`` with an additive mask: padding frames are never
attended to. No dropout on the attention weights: on a CPU it forces torch's reference
kernel, about 3x slower; plugins put their dropout on the output instead.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def masked_self_attention(qkv: torch.Tensor, valid: torch.Tensor, heads: int) -> torch.Tensor:
    """``qkv`` [B, T, 3D] (queries, keys, values side by side), ``valid`` [B, T] -> [B, T, D]."""
    b, t, three_d = qkv.shape
    d = three_d // 3
    q, k, v = (x.view(b, t, heads, d // heads).transpose(1, 2) for x in qkv.chunk(3, -1))
    bias = torch.zeros(valid.shape, dtype=q.dtype, device=q.device).masked_fill(~valid, float("-inf"))
    attended = F.scaled_dot_product_attention(q, k, v, attn_mask=bias[:, None, None, :])
    return attended.transpose(1, 2).reshape(b, t, d)
