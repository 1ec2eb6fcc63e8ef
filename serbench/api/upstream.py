"""The interface every upstream implements: a waveform batch in, every hidden state out."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class UpstreamOutput:
    """``hidden_states``: ``[layers, B, T, D]``; ``lengths``: valid frames per utterance."""

    hidden_states: torch.Tensor
    lengths: torch.Tensor


class Upstream(nn.Module):
    """Subclasses set ``num_layers`` (hidden states returned), ``dim``, ``frame_rate`` (Hz)
    and implement two methods, both required: :meth:`forward` on 16 kHz mono float waveforms
    ``[B, S]`` with their sample ``lengths`` ``[B]``, returning :class:`UpstreamOutput`
    (``hidden_states`` ``[num_layers, B, T, dim]``: layer-first, where a downstream's batch is
    batch-first), and :meth:`fingerprint`, which names the weights (it keys the feature cache).
    Padding beyond a length must not change that utterance's features: batched and one-by-one
    extraction have to agree (set ``batch_safe = False`` to be run one utterance at a time).
    ``serbench check-plugin upstream NAME`` checks all of this.

    Dtypes: ``wavs`` float32 in [-1, 1], zero beyond each length; ``lengths`` int64;
    ``hidden_states`` float (float32, or what the model computes in; the cache stores
    ``cache.dtype``), ``UpstreamOutput.lengths`` int64 valid frames. Determinism: the host calls
    ``eval()`` and no_grad for frozen extraction, and the features are cached under the
    fingerprint, so the same weights and audio must give the same features (no dropout, no
    random crops outside training). Precision: ``precisions`` names the extraction precisions
    (``-o upstream.precision``) the upstream honours; a neural encoder declares
    ``("fp32", "bf16")`` and the host runs its forward under bf16 autocast when asked.
    """

    sample_rate = 16_000
    # one that computes no neural forward (filterbanks, openSMILE) keeps fp32 only: bf16 is refused
    precisions: tuple[str, ...] = ("fp32",)
    num_layers: int
    dim: int
    frame_rate: float

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor) -> UpstreamOutput:
        raise NotImplementedError

    # Optional, for fine-tuning: an upstream whose convolutional front-end can be frozen may
    # define ``frontend(wavs, lengths) -> list[Tensor]`` (each utterance's front-end output,
    # computed without grad) and accept ``frontend=`` (those outputs, padded to [B, C, frames])
    # in ``forward`` in place of running the front-end again. serbench.run.finetune keeps them per
    # uncropped utterance, so a frozen front-end runs once per utterance and job.

    def fingerprint(self) -> str:
        """Required. Identifies the weights (repo id and revision, or a seed): part of the feature
        cache's key (with the plugin's version) and recorded in results."""
        raise NotImplementedError
