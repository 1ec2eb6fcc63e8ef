"""Turning utterance ids into padded training batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from serbench.corpus import Utterance


def collate(
    ids: Sequence[str],
    features: Mapping[str, np.ndarray | torch.Tensor],
    utterances: Mapping[str, Utterance],
    class_index: Mapping[str, int],
    labels: Mapping[str, str] | None = None,
    device: torch.device | str = "cpu",
) -> dict:
    """A batch: ``features`` [B, L, T, D] float32 zero-padded, ``mask`` [B, T], ``lengths``,
    ``labels`` [B], plus the protocol's side information (``speakers``, ``genders``,
    ``attributes`` [B, 3] where every utterance has them, ``transcripts``).
    ``labels`` replaces the corpus labels (the shuffled-label sanity check uses it)."""
    tensors = [features[i] for i in ids]
    layers, _, dim = tensors[0].shape
    lengths = torch.tensor([t.shape[1] for t in tensors])
    padded = torch.zeros(len(ids), layers, int(lengths.max()), dim)
    for row, t in enumerate(tensors):
        padded[row, :, : t.shape[1]] = torch.as_tensor(np.asarray(t, dtype=np.float32))
    utts = [utterances[i] for i in ids]
    names = [labels[i] if labels else u.label for i, u in zip(ids, utts)]
    batch = {
        "ids": list(ids),
        "features": padded.to(device),
        "lengths": lengths.to(device),
        "mask": (torch.arange(padded.shape[2])[None, :] < lengths[:, None]).to(device),
        "labels": torch.tensor([class_index[n] for n in names], device=device),
        "speakers": [u.speaker for u in utts],
        "genders": [u.gender for u in utts],
        "transcripts": [u.transcript for u in utts],
    }
    keys = ("valence", "arousal", "dominance")
    if all(all(k in u.attributes for k in keys) for u in utts):
        batch["attributes"] = torch.tensor([[u.attributes[k] for k in keys] for u in utts], device=device)
    return batch
