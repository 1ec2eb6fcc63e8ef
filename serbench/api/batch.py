"""The batch a downstream, a pooling (its third argument) and a loss receive, and the two
helpers plugins use on it: the valid-frame mask and length-bucketed batching.

Padding: every tensor is padded with zeros to the longest utterance of the batch; ``mask``
(frames) and ``lengths``/``wav_lengths`` say what is real. A plugin must give the same output
for an utterance whatever it is batched with (masked means, masked attention: see
:mod:`serbench.api.blocks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, TypedDict

import torch

ATTRIBUTES = ("valence", "arousal", "dominance")


class Batch(TypedDict, total=False):
    """The dict a downstream's ``forward`` (and a pooling and a loss) receives. B utterances;
    L the kept upstream layers, T frames, D the upstream's width. Note the layout: ``features``
    is batch-first ``[B, L, T, D]`` while an upstream returns ``UpstreamOutput.hidden_states``
    as ``[L, B, T, D]``. The batch table in docs/writing-plugins.md is generated from these annotations."""

    ids: Annotated[list[str], "always: utterance ids, in batch order"]
    labels: Annotated[torch.Tensor, "always: class indices [B] (int64) in the protocol's class order"]
    speakers: Annotated[list[str], "always: speaker ids"]
    genders: Annotated[list, "always: 'F', 'M' or None per utterance"]
    transcripts: Annotated[list, "always: text or None per utterance"]
    soft_labels: Annotated[torch.Tensor, "when every utterance has a rater distribution (the 'soft_labels' need): [B, K] float shares in the protocol's class order, each row summing to 1"]
    attributes: Annotated[torch.Tensor, "when every utterance has valence and arousal (the 'attributes' need): [B, 3] float valence, arousal, dominance in [0, 1]; dominance NaN where the protocol has none"]
    features: Annotated[torch.Tensor, "frozen encoder: [B, L, T, D] float32, zero beyond each length"]
    mask: Annotated[torch.Tensor, "frozen encoder: [B, T] bool, true on valid frames"]
    lengths: Annotated[torch.Tensor, "frozen encoder: [B] int64 valid frames"]
    wavs: Annotated[torch.Tensor, "fine-tuning: [B, S] float32 16 kHz waveforms, zero-padded (the model computes features)"]
    wav_lengths: Annotated[torch.Tensor, "fine-tuning: [B] int64 valid samples"]
    whole: Annotated[list[bool], "fine-tuning: per row, not randomly cropped (the same samples every time)"]
    vad: Annotated[torch.Tensor, "when a plugin needs 'vad': [B, T] bool speech frames (webrtcvad), aligned to features"]


def frame_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """``[B, frames]`` bool, true on each row's first ``lengths[b]`` frames (the ``mask`` of a batch)."""
    return torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]


def bucketed(ids: Sequence[str], lengths: Sequence[int], size: int, generator: torch.Generator | None,
             per_bucket: int = 8) -> list[list[str]]:
    """Batches of ``size`` ids with little padding. Training (``generator`` given): the ids are
    shuffled, cut into buckets of ``per_bucket`` batches, sorted by length inside each bucket
    and cut into batches, whose order is shuffled again, so every epoch sees new batch-mates
    (``per_bucket = 0``: plain shuffled batches). Evaluation (no generator): sorted by length,
    longest first; the caller restores the order."""
    if generator is None:
        order = sorted(range(len(ids)), key=lambda i: -lengths[i])
        return [[ids[i] for i in order[k : k + size]] for k in range(0, len(order), size)]
    order = torch.randperm(len(ids), generator=generator).tolist()
    if per_bucket <= 0:
        return [[ids[i] for i in order[k : k + size]] for k in range(0, len(order), size)]
    batches = []
    span = size * per_bucket
    for start in range(0, len(order), span):
        bucket = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches += [bucket[k : k + size] for k in range(0, len(bucket), size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [[ids[i] for i in batches[b]] for b in shuffled]
