"""Training-time augmentation with a perturbation plugin: ``-o train.augment=NAME:k=v`` (off by
default), ``-o train.augment_copies=N``.

Only training audio is perturbed; dev and test stay clean. Each training utterance has its clean
audio and ``N`` perturbed copies (copy ``k`` drawn with the condition's generator and ``k``:
:class:`serbench.run.perturb.Perturber`); in epoch ``e`` utterance ``u`` is seen as copy
``(e - 1 + offset(u)) mod (N + 1)`` (copy 0 the clean audio, ``offset`` a hash of its id), so
every epoch mixes clean and perturbed utterances and each utterance cycles through its copies.

What it costs: with a frozen encoder the copies' features are extracted once into the feature
cache (each copy a cache folder of its own, keyed by the perturbation and the copy), so the
first run extracts the training set ``N`` more times and the cache grows by ``N`` times the
training set's features; later epochs and runs read them. Perturbing per epoch with fresh draws
would need an encoder pass per epoch, which a cached-feature benchmark exists to avoid. When
fine-tuning, audio is perturbed on the fly each step (no cache; the frozen front-end cache is
bypassed for perturbed rows).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from serbench.api.specs import Param
from serbench.run.batching import FeatureBatcher
from serbench.run.perturb import Perturber, parse

AUGMENT_PARAMS = (
    Param("augment", str, "", "training augmentation: a perturbation NAME:k=v,... applied to training audio only "
          "(serbench list perturbations; empty: none)"),
    Param("augment_copies", int, 2, "perturbed copies of each training utterance, cycled over epochs with the clean "
          "one (frozen encoder: each copy's features are cached)", bounds=">= 1"),
)


def offset(uid: str, cycle: int) -> int:
    return int.from_bytes(hashlib.blake2b(uid.encode(), digest_size=4).digest(), "little") % cycle


def copy_of(uid: str, epoch: int, copies: int) -> int:
    """Which copy (0 clean, 1..copies perturbed) utterance ``uid`` is seen as in ``epoch`` (from 1)."""
    return (epoch - 1 + offset(uid, copies + 1)) % (copies + 1)


def perturber(train: Mapping) -> Perturber | None:
    """The run's augmentation, or None when ``train.augment`` is empty (or absent)."""
    text = train.get("augment") or ""
    return Perturber(parse(text, "-o train.augment")) if text else None


class AugmentedFeatures:
    """Frozen encoder: training batches read each utterance's copy for the epoch; evaluation
    batches (dev, test) read the clean features."""

    def __init__(self, clean: FeatureBatcher, copies: Sequence[Mapping], train: Sequence[str]):
        self.clean, self.copies, self.train = clean, list(copies), list(train)
        self.lengths = clean.lengths
        self.set_epoch(1)  # a method's stages train without epochs from the trainer: they see epoch 1's copies

    def set_epoch(self, epoch: int) -> None:
        features = dict(self.clean.features)
        for uid in self.train:
            k = copy_of(uid, epoch, len(self.copies))
            if k:
                features[uid] = self.copies[k - 1][uid]
        self.epoch_batcher = FeatureBatcher(features, self.clean.utterances, list(self.clean.class_index),
                                            self.clean.device, self.clean.vad, self.clean.max_frames)

    def __call__(self, ids, labels=None, train: bool = False):
        return (self.epoch_batcher if train else self.clean)(ids, labels, train)


class AugmentedAudio:
    """Fine-tuning: training waveforms are the epoch's copy, perturbed on the fly (epoch 1's in
    a method's stages, which the trainer's epochs do not reach)."""

    def __init__(self, inner, perturb: Perturber, copies: int):
        self.inner, self.perturb, self.copies = inner, perturb, copies
        self.lengths = inner.lengths
        self.epoch = 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _load(self, utterance):
        k = copy_of(utterance.id, self.epoch, self.copies)
        return self.perturb.load(utterance, k) if k else self.clean_load(utterance)

    def __call__(self, ids, labels=None, train: bool = False):
        if not train:
            return self.inner(ids, labels, train)
        self.clean_load = self.inner.load
        self.inner.load = self._load
        try:
            batch = self.inner(ids, labels, train)
        finally:
            self.inner.load = self.clean_load
        batch["whole"] = [False] * len(ids)  # the front-end cache holds clean audio
        return batch


def wrap(batcher, train: Mapping, features: Mapping | None, augmented: Sequence[Mapping] | None,
         train_ids: Sequence[str]):
    """``batcher`` with the run's augmentation, or ``batcher`` itself when there is none."""
    perturb = perturber(train)
    if perturb is None:
        return batcher
    if features is None:
        return AugmentedAudio(batcher, perturb, train["augment_copies"])
    return AugmentedFeatures(batcher, augmented, train_ids)
