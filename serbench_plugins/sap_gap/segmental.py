"""``segmental``: segmental average pooling (SAP) of Hyeon, Oh & Choi (Interspeech 2024).

Frames that voice activity detection marks as speech (``batch['vad']``, aligned to the
features' frames) attend to each other with multi-head self-attention, and their outputs are
averaged. An utterance with no speech frame falls back to all its valid frames; the host
counts those utterances and reports them in the result (``annotations.vad_no_speech``).
"""

from __future__ import annotations

import torch
from torch import nn

from serbench.api.blocks import masked_self_attention


def speech_mask(mask: torch.Tensor, batch: dict) -> torch.Tensor:
    """Valid speech frames, or every valid frame for an utterance without speech."""
    speech = mask & batch["vad"]
    empty = ~speech.any(dim=1, keepdim=True)
    return torch.where(empty, mask, speech)


def pack(frames: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The kept frames of each utterance moved to the front, in order: ``[B, S, D]`` with
    S the largest kept count, and the mask of real (not padding) positions ``[B, S]``."""
    counts = keep.sum(1)
    width = max(int(counts.max()), 1)
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)[:, :width]
    packed = frames.gather(1, order.unsqueeze(-1).expand(-1, -1, frames.shape[-1]))
    return packed, torch.arange(width, device=frames.device)[None] < counts[:, None]


class SegmentalPooling(nn.Module):
    """Multi-head self-attention among the speech frames only, then their mean.

    Attention is computed on the speech frames packed together (non-speech and padding frames
    never enter it, as keys or as queries), with ``scaled_dot_product_attention``: the same
    function as a key-masked attention over all frames, averaged over the speech queries,
    at a fraction of the cost. Dropout (the plugin's choice; the paper names none) acts on
    the attention output, not on the attention weights: weight dropout would force the slow
    reference kernel (about 3x slower on a CPU)."""

    needs = ("vad",)

    def __init__(self, dim: int, heads: int = 8, dropout: float = 0.1, vad_aggressiveness: int = 3):
        super().__init__()
        self.out_dim = dim
        while dim % heads:
            heads -= 1  # the width must split evenly; documented choice: the nearest smaller divisor
        self.heads = heads
        self.in_proj = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor, batch: dict | None = None) -> torch.Tensor:
        packed, valid = pack(frames, speech_mask(mask, batch))
        attended = self.dropout(self.out_proj(masked_self_attention(self.in_proj(packed), valid, self.heads)))
        weights = valid.unsqueeze(-1).to(attended.dtype)
        return (attended * weights).sum(1) / weights.sum(1)
