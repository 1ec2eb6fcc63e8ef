"""Turning utterance ids into padded batches: from cached features, or from audio.

What a downstream, a pooling (its third argument) and a loss receive is a
:class:`serbench.api.batch.Batch`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from serbench.api.audio import load_utterance, utterance_frames
from serbench.api.batch import ATTRIBUTES, Batch, frame_mask
from serbench.api.protocol import Utterance
from serbench.run.stored_features import frames_of


def side_information(
    ids: Sequence[str],
    utterances: Mapping[str, Utterance],
    class_index: Mapping[str, int],
    labels: Mapping[str, str] | None,
    device: torch.device | str,
) -> Batch:
    """Labels and side information; ``labels`` replaces the corpus labels (the
    shuffled-label sanity check uses it)."""
    utts = [utterances[i] for i in ids]
    names = [labels[i] if labels else u.label for i, u in zip(ids, utts)]
    batch = {
        "ids": list(ids),
        "labels": torch.tensor([class_index[n] for n in names], device=device),
        "speakers": [u.speaker for u in utts],
        "genders": [u.gender for u in utts],
        "transcripts": [u.transcript for u in utts],
    }
    if not labels and all(u.distribution for u in utts):  # (not under shuffled labels: they would not follow)
        batch["soft_labels"] = torch.tensor([[u.distribution.get(c, 0.0) for c in class_index] for u in utts],
                                            dtype=torch.float32, device=device)
    if all("valence" in u.attributes and "arousal" in u.attributes for u in utts):
        batch["attributes"] = torch.tensor([[u.attributes.get(k, math.nan) for k in ATTRIBUTES] for u in utts],
                                           device=device)
    return batch


class FeatureBatcher:
    """Batches of precomputed features ``{id: [L, T, D]}``: numpy arrays, cache entries on disk
    (:class:`serbench.run.stored_features.StoredArray`, read batch by batch so that resident
    memory stays one batch whatever the corpus size) or tensors already on the training device."""

    def __init__(self, features: Mapping[str, np.ndarray], utterances: Mapping[str, Utterance],
                 classes: Sequence[str], device: torch.device | str = "cpu",
                 vad: Mapping[str, np.ndarray] | None = None, max_frames: int = 0):
        self.features, self.utterances, self.device, self.vad = features, utterances, device, vad
        self.max_frames = max_frames
        self.class_index = {c: k for k, c in enumerate(classes)}

    def lengths(self, ids: Sequence[str]) -> list[int]:
        """Frames per utterance as batched (after truncation)."""
        frames = [self.features[i].shape[1] for i in ids]
        return [min(n, self.max_frames) for n in frames] if self.max_frames else frames

    def __call__(self, ids: Sequence[str], labels: Mapping[str, str] | None = None, train: bool = False) -> Batch:
        arrays = [frames_of(self.features[i], self.max_frames) for i in ids]
        layers, _, dim = arrays[0].shape
        lengths = torch.tensor([a.shape[1] for a in arrays])
        padded = torch.zeros(len(ids), layers, int(lengths.max()), dim, device=self.device)
        for row, a in enumerate(arrays):
            t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a, dtype=np.float32))
            padded[row, :, : t.shape[1]] = t.to(self.device, torch.float32)
        batch = side_information(ids, self.utterances, self.class_index, labels, self.device)
        lengths = lengths.to(self.device)
        batch.update(features=padded, lengths=lengths, mask=frame_mask(lengths, padded.shape[2]))
        if self.vad is not None:
            vad = torch.zeros(len(ids), padded.shape[2], dtype=torch.bool)
            for row, i in enumerate(ids):
                mask = self.vad[i][: padded.shape[2]]
                vad[row, : mask.size] = torch.from_numpy(mask)
            batch["vad"] = vad.to(self.device)
        return batch


class AudioBatcher:
    """Batches of waveforms for fine-tuning; training batches are randomly cropped to at most
    ``crop_seconds`` (0 keeps whole utterances), evaluation batches never are."""

    def __init__(self, utterances: Mapping[str, Utterance], classes: Sequence[str], crop_seconds: float,
                 seed: int, device: torch.device | str = "cpu", sample_rate: int = 16_000, max_seconds: float = 0.0):
        self.utterances, self.device = utterances, device
        self.class_index = {c: k for k, c in enumerate(classes)}
        self.crop = int(crop_seconds * sample_rate)
        self.rng = np.random.default_rng(seed)
        self.max_samples = int(max_seconds * sample_rate)
        self.sample_rate = sample_rate
        self.load = load_utterance  # how a waveform is read (a perturbed copy's: serbench.run.augment)
        self._sizes: dict[str, int] = {}

    def lengths(self, ids: Sequence[str]) -> list[int]:
        """Samples per utterance after truncation (crops only shorten training batches further)."""
        for i in ids:
            if i not in self._sizes:
                frames, rate = utterance_frames(self.utterances[i])
                self._sizes[i] = int(round(frames * self.sample_rate / rate))
        return [min(self._sizes[i], self.max_samples or self._sizes[i]) for i in ids]

    def __call__(self, ids: Sequence[str], labels: Mapping[str, str] | None = None, train: bool = False) -> Batch:
        wavs = [self.load(self.utterances[i]) for i in ids]
        if self.max_samples:
            wavs = [w[: self.max_samples] for w in wavs]
        whole = [True] * len(wavs)
        if train and self.crop:
            whole = [w.size <= self.crop for w in wavs]
            cropped = []
            for w in wavs:
                start = int(self.rng.integers(0, w.size - self.crop + 1)) if w.size > self.crop else 0
                cropped.append(w[start : start + self.crop])
            wavs = cropped
        sizes = torch.tensor([w.size for w in wavs])
        padded = torch.zeros(len(wavs), int(sizes.max()))
        for row, w in enumerate(wavs):
            padded[row, : w.size] = torch.from_numpy(w)
        batch = side_information(ids, self.utterances, self.class_index, labels, self.device)
        batch.update(wavs=padded.to(self.device), wav_lengths=sizes.to(self.device), whole=whole)
        return batch
