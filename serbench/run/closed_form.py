"""Heads fitted in closed form (scikit-learn) instead of by gradient descent.

A downstream model that sets ``fitted_in_closed_form = True`` defines ``pooled(batch) -> [B, D]``
and ``fit(train_x, train_y, dev_x, dev_score, seed) -> dict`` (see
:mod:`serbench_plugins.classic.model`). The host pools the training and selection splits
through the model (so the features are exactly those its ``forward`` sees), lets it fit, then
predicts dev and test through ``forward`` as the gradient trainer does: predictions, saved
models and ``serbench predict`` need nothing special. Fold hygiene is the trainer's: the
model sees training features and labels, and dev only through ``dev_score``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from serbench.api.errors import SerbenchError
from serbench.run.batching import bucketed
from serbench.run.trainer import FoldData, FoldOutcome, dev_score, predict


def is_closed_form(model: nn.Module) -> bool:
    return bool(getattr(model, "fitted_in_closed_form", False))


def check(model: nn.Module, tuning: bool, name: str) -> None:
    """A closed-form head needs frozen features: refused with fine-tuning, before the run starts."""
    if tuning and is_closed_form(model):
        raise SerbenchError(f"downstream {name} is fitted by scikit-learn on frozen features and cannot fine-tune "
                            "the upstream: drop -o upstream.finetune=true")


@torch.no_grad()
def pooled(model: nn.Module, data: FoldData, ids: Sequence[str], batch_size: int) -> np.ndarray:
    """``[len(ids), D]`` float64 pooled features, in the order of ``ids``."""
    model.eval()
    rows = {}
    for chunk in bucketed(ids, data.batcher.lengths(ids), batch_size, None):
        rows.update(zip(chunk, model.pooled(data.batcher(chunk)).double().cpu().numpy()))
    return np.stack([rows[i] for i in ids])


def fit_fold(model: nn.Module, data: FoldData, main_metric: str, params: Mapping, seed: int,
             device: torch.device) -> tuple[FoldOutcome, dict]:
    """Fit on train, select on dev (or test when ``select_split=test``), predict dev and test once."""
    model.to(device)
    index = {c: k for k, c in enumerate(data.classes)}
    select_ids = data.test if params.get("select_split", "dev") == "test" else data.dev
    train_y = np.array([index[data.utterances[i].label] for i in data.train])
    select_y = np.array([index[data.utterances[i].label] for i in select_ids])
    if params["shuffle_labels"]:  # the leakage control, as train_fold does it: training and selection permuted
        rng = np.random.default_rng(seed)
        train_y, select_y = rng.permutation(train_y), rng.permutation(select_y)
    batch = params["batch_size"]
    info = model.fit(pooled(model, data, data.train, batch), train_y, pooled(model, data, select_ids, batch),
                     lambda probs: dev_score(probs, select_y, main_metric), seed)
    dev_probs = predict(model, data, data.dev, device, batch)
    test_probs = predict(model, data, data.test, device, batch)
    return FoldOutcome(test_probs, dev_probs, best_epoch=1, epochs_run=1, dev_history=[info["dev_score"]]), info
