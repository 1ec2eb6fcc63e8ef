"""Training on every training speaker: ``-o train.select_split=none``.

serbench selects each fold's epoch on a dev split, which most protocols carve out of the
training sessions (IEMOCAP: a stratified 20% of their utterances). Papers such as WAP-LA
(Song et al.) and GMP-ATL (Pan et al. 2024) trained on all training sessions for a fixed
number of epochs and kept the last weights; a run under the carve-out trains on 80% of what
theirs did. ``train.select_split=none`` reproduces that: the fold's dev utterances join
train, every stage (the methods' own ones included) reads the union, the supervised stage
runs all ``train.max_epochs`` epochs and keeps the last weights, and there are no dev
predictions (so ``serbench fuse``, which fits its weights on them, refuses such runs).

The result says so in ``annotations.training_split`` and the table beside a paper's rows
shows the share of the training speakers' utterances trained on (100%).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

NONE = "none"  # the train.select_split value


def selects_nothing(train_params: Mapping) -> bool:
    """True when the run trains on every training speaker and keeps the last epoch."""
    return train_params.get("select_split", "dev") == NONE


def splits(train: Sequence[str], dev: Sequence[str], train_params: Mapping) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(train, dev) as the trainer and the stages see them: the fold's own, or, with
    ``select_split=none``, the union of both as train and no dev."""
    if selects_nothing(train_params):
        return tuple(train) + tuple(dev), ()
    return tuple(train), tuple(dev)


def annotation(train_params: Mapping) -> dict:
    """The result's ``annotations`` entry for a run that trains on all training speakers."""
    if not selects_nothing(train_params):
        return {}
    return {"training_split": f"trained on 100% of the training speakers, last epoch "
                              f"(train.select_split=none: no dev split, {train_params['max_epochs']} epochs)"}


def stopping(train_params: Mapping) -> str:
    """The supervised stage's stopping rule under ``select_split=none``, for the recipe record."""
    return (f"none (train.select_split=none): all {train_params['max_epochs']} epochs on 100% of the training "
            "speakers, no dev split; the last epoch's weights are kept")
