"""``segmental``: segmental average pooling (SAP) of Hyeon, Oh & Choi (Interspeech 2024).

Frames that voice activity detection marks as speech (``batch['vad']``, aligned to the
features' frames) attend to each other with multi-head self-attention, and their outputs are
averaged. An utterance with no speech frame falls back to all its valid frames; the host
counts those utterances and reports them in the result (``annotations.vad_no_speech``).
"""

from __future__ import annotations

import torch
from torch import nn

from serbench.hookspecs import hookimpl
from serbench.specs import Param, Spec

CITATION = "Hyeon, Oh & Choi, Enhancing SER through Segmental Average Pooling of SSL features, Interspeech 2024"


def speech_mask(mask: torch.Tensor, batch: dict) -> torch.Tensor:
    """Valid speech frames, or every valid frame for an utterance without speech."""
    speech = mask & batch["vad"]
    empty = ~speech.any(dim=1, keepdim=True)
    return torch.where(empty, mask, speech)


class SegmentalPooling(nn.Module):
    needs = ("vad",)

    def __init__(self, dim: int, heads: int = 8, dropout: float = 0.1, vad_aggressiveness: int = 3):
        super().__init__()
        self.out_dim = dim
        while dim % heads:
            heads -= 1  # the width must split evenly; documented choice: the nearest smaller divisor
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor, batch: dict | None = None) -> torch.Tensor:
        keep = speech_mask(mask, batch)
        attended, _ = self.attention(frames, frames, frames, key_padding_mask=~keep, need_weights=False)
        weights = keep.unsqueeze(-1).to(attended.dtype)
        return (attended * weights).sum(1) / weights.sum(1)


@hookimpl
def register_poolings() -> list[Spec]:
    return [
        Spec(
            name="segmental",
            factory=SegmentalPooling,
            summary="SAP: multi-head self-attention over VAD speech frames, then their mean",
            params=(
                Param("heads", int, 8, "attention heads"),
                Param("dropout", float, 0.1, "attention dropout"),
                Param("vad_aggressiveness", int, 3, "WebRTC VAD aggressiveness, 0 (lenient) to 3 (strict)", (0, 1, 2, 3)),
            ),
            version="1",
            citation=CITATION,
            meta={"needs": ("vad",)},
        )
    ]
