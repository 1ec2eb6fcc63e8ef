"""Fold construction shared by protocols: leave-one-group-out with a dev split from training."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from serbench.api.protocol import Fold, Utterance

DEV_MODES = ("stratified", "speaker")


def stratified_holdout(utterances: Sequence[Utterance], fraction: float, seed: int) -> set[str]:
    """A seeded ``fraction`` of the utterances, taken per label so class balance is kept."""
    by_label: dict[str, list[str]] = defaultdict(list)
    for u in utterances:
        by_label[u.label].append(u.id)
    rng = np.random.default_rng(seed)
    held: set[str] = set()
    for label in sorted(by_label):
        ids = sorted(by_label[label])
        take = int(round(fraction * len(ids)))
        held.update(rng.permutation(ids)[:take].tolist())
    return held


def speaker_holdout(utterances: Sequence[Utterance], seed: int) -> set[str]:
    """Every utterance of one seeded choice among the speakers present."""
    speakers = sorted({u.speaker for u in utterances})
    chosen = speakers[int(np.random.default_rng(seed).integers(len(speakers)))]
    return {u.id for u in utterances if u.speaker == chosen}


def split_off_dev(train: Sequence[Utterance], mode: str, fraction: float, seed: int) -> set[str]:
    if mode == "speaker":
        return speaker_holdout(train, seed)
    return stratified_holdout(train, fraction, seed)


def leave_one_session_out(
    utterances: Sequence[Utterance], dev_fraction: float, seed: int, dev: str = "stratified"
) -> list[Fold]:
    """Fold k tests session k (sessions in sorted order); dev comes from the other sessions:
    a stratified ``dev_fraction`` of their utterances, or one of their speakers."""
    sessions = sorted({u.session for u in utterances})
    folds = []
    for k, session in enumerate(sessions, start=1):
        rest = [u for u in utterances if u.session != session]
        held = split_off_dev(rest, dev, dev_fraction, seed + k)
        folds.append(
            Fold(
                name=str(k),
                train=tuple(u.id for u in rest if u.id not in held),
                dev=tuple(u.id for u in rest if u.id in held),
                test=tuple(u.id for u in utterances if u.session == session),
            )
        )
    return folds


def leave_one_speaker_out_paired(utterances: Sequence[Utterance], speakers: Sequence[str]) -> list[Fold]:
    """One fold per speaker, in the given order: test = that speaker, dev = the other speaker
    of the same session, train = everyone else (8/1/1 on IEMOCAP). A speaker with no utterance
    gets no fold (the protocol's ``required`` speakers refuse that copy of the corpus)."""
    folds = []
    for speaker in speakers:
        session = next((u.session for u in utterances if u.speaker == speaker), None)
        if session is None:
            continue
        partner = {u.speaker for u in utterances if u.session == session} - {speaker}
        folds.append(
            Fold(
                name=speaker,
                train=tuple(u.id for u in utterances if u.session != session),
                dev=tuple(u.id for u in utterances if u.speaker in partner),
                test=tuple(u.id for u in utterances if u.speaker == speaker),
            )
        )
    return folds


def speaker_disjoint_holdout(utterances: Sequence[Utterance], fraction: float, seed: int) -> set[str]:
    """Whole speakers, in a seeded order, until at least ``fraction`` of the utterances are
    held out: no speaker is in both parts."""
    by_speaker: dict[str, list[str]] = defaultdict(list)
    for u in utterances:
        by_speaker[u.speaker].append(u.id)
    order = np.random.default_rng(seed).permutation(sorted(by_speaker))
    held: set[str] = set()
    target = fraction * len(utterances)
    for speaker in order.tolist():
        if len(held) >= target:
            break
        held.update(by_speaker[speaker])
    return held
