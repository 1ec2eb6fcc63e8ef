"""Fold construction shared by protocols: leave-one-group-out with a stratified dev split."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from serbench.corpus import Fold, Utterance


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


def leave_one_session_out(
    utterances: Sequence[Utterance], dev_fraction: float, seed: int
) -> list[Fold]:
    """Fold k tests session k; dev is a stratified ``dev_fraction`` of the other sessions."""
    sessions = sorted({u.session for u in utterances})
    folds = []
    for k, session in enumerate(sessions, start=1):
        rest = [u for u in utterances if u.session != session]
        dev = stratified_holdout(rest, dev_fraction, seed + k)
        folds.append(
            Fold(
                name=str(k),
                train=tuple(u.id for u in rest if u.id not in dev),
                dev=tuple(u.id for u in rest if u.id in dev),
                test=tuple(u.id for u in utterances if u.session == session),
            )
        )
    return folds
