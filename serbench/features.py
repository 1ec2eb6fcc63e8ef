"""Frozen-mode feature extraction: each utterance goes through the upstream once per run.

Utterances are sorted by length and batched under a total-audio budget so that padding is
small; the result keeps every hidden state per utterance, ``[layers, frames, dim]`` in fp16.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import soundfile as sf
import torch

from serbench.audio import load_audio
from serbench.corpus import Utterance
from serbench.errors import SerbenchError
from serbench.upstream import Upstream


def _num_samples(utterance: Utterance) -> int:
    if not utterance.path.is_file():
        raise SerbenchError(f"{utterance.path}: audio file not found (utterance {utterance.id})")
    try:
        info = sf.info(utterance.path)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise SerbenchError(f"{utterance.path}: cannot read audio ({exc})") from None
    return int(round(info.frames * 16_000 / info.samplerate))


def length_batches(lengths: Sequence[int], max_samples: int, max_items: int = 64) -> list[list[int]]:
    """Indices grouped longest-first so that each padded batch holds at most ``max_samples``
    samples (a single longer utterance forms its own batch)."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    batches: list[list[int]] = []
    for index in order.tolist():
        if batches:
            current = batches[-1]
            longest = lengths[current[0]]
            if len(current) < max_items and longest * (len(current) + 1) <= max_samples:
                current.append(index)
                continue
        batches.append([index])
    return batches


@torch.inference_mode()
def extract(
    upstream: Upstream,
    utterances: Sequence[Utterance],
    device: torch.device,
    batch_seconds: float = 160.0,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, torch.Tensor]:
    """``{utterance id: fp16 [layers, frames, dim] on the CPU}`` for every utterance."""
    upstream = upstream.to(device).eval()
    lengths = [_num_samples(u) for u in utterances]
    features: dict[str, torch.Tensor] = {}
    for batch in length_batches(lengths, int(batch_seconds * 16_000)):
        wavs = [load_audio(utterances[i].path) for i in batch]
        sizes = torch.tensor([w.size for w in wavs])
        padded = torch.zeros(len(wavs), int(sizes.max()))
        for row, wav in enumerate(wavs):
            padded[row, : wav.size] = torch.from_numpy(wav)
        out = upstream(padded.to(device), sizes.to(device))
        hidden = out.hidden_states.to(torch.float16).cpu()
        for row, i in enumerate(batch):
            features[utterances[i].id] = hidden[:, row, : int(out.lengths[row])].clone()
        if on_batch:
            on_batch(len(batch))
    return features
