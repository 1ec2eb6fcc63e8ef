"""Training one downstream on one fold: AdamW, early stopping on dev, best-on-dev weights.

The supervised training is one :class:`~serbench.api.stages.Stage` (AdamW at ``train.lr``,
``train.schedule``, ``train.max_epochs`` epochs, ``train.grad_clip``) run by the one training
loop (:mod:`serbench.run.loop`) with dev selection as the loop's option; this module says what
the stage is, how an epoch is scored on dev, and predicts.

Model selection reads dev only; test is predicted once, after the best weights are restored.
The one exception is asked for by name (``train.select_split=test``): a paper that reported
its best epoch on the scored split itself (Diatlova et al. on MSP-Podcast's Development) is
reproduced only by selecting there; the config records it and the run log says it is optimistic.
``train.select_split=none`` selects nothing: every ``max_epochs`` epoch runs and the last
weights are kept (a paper that trained on all training speakers for a fixed epoch count; the
job then passes the fold's dev utterances as training ones, see :mod:`serbench.api.full_training`).
Evaluation runs in batches of the training batch size, longest utterances first, so its
memory stays within what training needs (twice the size set the GMP-ATL demo's peak).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from serbench.api.batch import bucketed
from serbench.api.errors import SerbenchError
from serbench.api.protocol import Utterance
from serbench.api.specs import Param
from serbench.api.stages import Optimiser, Schedule, Stage, StageInput
from serbench.report.metrics import confusion, from_confusion
from serbench.run import loop

TRAIN_PARAMS = (
    Param("lr", float, 1e-3, "AdamW learning rate", bounds="> 0"),
    Param("weight_decay", float, 0.01, "AdamW weight decay", bounds=">= 0"),
    Param("batch_size", int, 32, "utterances per training step", bounds=">= 1"),
    Param("max_epochs", int, 30, "upper bound on passes over the training split", bounds=">= 1"),
    Param("patience", int, 5, "epochs without a better dev score before stopping", bounds=">= 0"),
    Param("grad_clip", float, 5.0, "gradient-norm clipping (0 disables it)", bounds=">= 0"),
    Param("shuffle_labels", bool, False, "permute training labels: a leakage sanity check"),
    Param("bf16", bool, False, "bf16 autocast for training steps"),
    Param("schedule", str, "constant", "learning-rate schedule after warm-up", ("constant", "cosine")),
    Param("warmup_ratio", float, 0.0, "share of all steps with a linear warm-up", bounds="[0, 1]"),
    Param("select_on", str, "metric", "dev criterion for early stopping: the main metric, or the loss", ("metric", "loss")),
    Param("select_split", str, "dev", "split the epoch is selected on: dev, or the scored test split itself "
          "(a paper's best-epoch protocol; optimistic, recorded), or none (dev joins train, all max_epochs run, "
          "the last weights kept)", ("dev", "test", "none")),
    Param("targets", str, "majority", "training targets: the majority label, or soft: the raters' label "
          "distribution (picks the soft_ce loss; needs a protocol with rater labels)", ("majority", "soft")),
    Param("max_seconds", float, 0.0, "truncate every utterance to its first N seconds (0: keep whole)", bounds=">= 0"),
    Param("crop_seconds", float, 0.0, "fine-tuning: random crop of training utterances to at most this (0: none)", bounds=">= 0"),
    Param("bucket_batches", int, 8, "training batches drawn from length-sorted buckets of this many batches (0: plain shuffling)", bounds=">= 0"),
)


@dataclass
class FoldData:
    """A fold's splits and the batcher that turns ids into batches
    (:class:`serbench.run.batching.FeatureBatcher` or :class:`serbench.run.batching.AudioBatcher`)."""

    batcher: Callable[..., dict]
    utterances: Mapping[str, Utterance]
    classes: Sequence[str]
    train: Sequence[str]
    dev: Sequence[str]
    test: Sequence[str]


@dataclass
class FoldOutcome:
    test_probs: np.ndarray  # [N_test, K]
    dev_probs: np.ndarray  # [N_dev, K], from the selected weights (fusion fits on these)
    best_epoch: int
    epochs_run: int
    dev_history: list[float]


def _batches(data: FoldData, ids: Sequence[str], size: int, generator: torch.Generator | None,
             per_bucket: int = 0) -> list[list[str]]:
    return bucketed(ids, data.batcher.lengths(ids), size, generator, per_bucket)


class NonFinite(SerbenchError):
    """The model's outputs hold NaN or inf: nothing can be scored."""


@torch.no_grad()
def predict(model: nn.Module, data: FoldData, ids: Sequence[str], device: torch.device, batch_size: int) -> np.ndarray:
    """Class probabilities ``[len(ids), K]`` in the order of ``ids`` (computed longest first)."""
    model.eval()
    probs = {}
    for chunk in _batches(data, ids, batch_size, None):
        batch = data.batcher(chunk)
        probs.update(zip(chunk, torch.softmax(model(batch)["logits"].float(), dim=-1).cpu().numpy()))
    stacked = np.stack([probs[i] for i in ids])
    if not np.isfinite(stacked).all():
        bad = next(i for i in ids if not np.isfinite(probs[i]).all())
        raise NonFinite(f"the model's logits are NaN/inf (first for utterance {bad}): its features or weights "
                        "hold non-finite values; nothing is scored")
    return stacked


def dev_score(probs: np.ndarray, labels: np.ndarray, metric: str) -> float:
    return float(from_confusion(confusion(labels, probs.argmax(1), probs.shape[1]))[metric])


@torch.no_grad()
def dev_loss(model: nn.Module, loss_fn, data: FoldData, batch_size: int,
             labels: Mapping[str, str] | None = None, ids: Sequence[str] | None = None) -> float:
    """Mean training loss over dev (or ``ids``), weighted by batch size (against ``labels`` when given)."""
    model.eval()
    ids = data.dev if ids is None else ids
    total = 0.0
    for chunk in _batches(data, ids, batch_size, None):
        batch = data.batcher(chunk, labels)
        total += float(loss_fn(model(batch), batch)) * len(chunk)
    return total / max(len(ids), 1)


def train_fold(
    model: nn.Module,
    loss_fn: Callable[[dict, dict], torch.Tensor],
    data: FoldData,
    main_metric: str,
    params: Mapping,
    seed: int,
    device: torch.device,
    on_epoch: Callable[[int, float], None] | None = None,
    groups: list[dict] | None = None,
    scoring=None,
) -> FoldOutcome:
    """Train on ``data.train``, select on ``data.dev``, predict ``data.test`` once.
    ``groups`` are optimizer parameter groups (default: every parameter at ``params['lr']``).
    ``scoring`` (``--task dimensional``: :class:`serbench.run.dimensional_task.DimensionalScoring`)
    replaces class probabilities and the main metric with its ``predict`` and ``score``; the
    outcome's ``*_probs`` then hold its predicted values."""
    index = {c: k for k, c in enumerate(data.classes)}
    select_ids = data.test if params.get("select_split", "dev") == "test" else data.dev
    last_epoch = params.get("select_split", "dev") == "none"  # no selection: the last weights are kept
    dev_labels = None if scoring else np.array([index[data.utterances[i].label] for i in select_ids])
    values_of = scoring.predict if scoring else predict
    shuffled: dict = {"labels": None, "dev_labels": dev_labels, "dev_map": None}

    def permute_labels(inputs: StageInput, generator: torch.Generator) -> None:
        """The control: training *and* model selection see permuted labels."""
        if not params["shuffle_labels"]:
            return
        permuted = torch.randperm(len(data.train), generator=generator).tolist()
        shuffled["labels"] = {i: data.utterances[data.train[j]].label for i, j in zip(data.train, permuted)}
        dev_order = torch.randperm(len(select_ids), generator=generator).numpy()
        shuffled["dev_labels"] = dev_labels[dev_order]  # selecting epochs on true dev labels would leak them
        shuffled["dev_map"] = {i: data.classes[k] for i, k in zip(select_ids, shuffled["dev_labels"])}

    def select(epoch: int) -> float:
        try:
            if params["select_on"] == "loss":
                score = -dev_loss(model, loss_fn, data, params["batch_size"], shuffled["dev_map"], select_ids)
            else:
                values = values_of(model, data, select_ids, device, params["batch_size"])
                score = (scoring.score(values, select_ids) if scoring
                         else dev_score(values, shuffled["dev_labels"], main_metric))
        except NonFinite as exc:
            raise SerbenchError(f"after epoch {epoch}, {exc} (training diverged? lower train.lr)") from None
        if not math.isfinite(score):
            raise SerbenchError(f"after epoch {epoch}, the dev {params['select_on']} is {score}: training diverged "
                                "(lower train.lr); nothing is scored")
        return score

    model.to(device)
    stage = Stage(
        "supervised", ("train",), True, step=lambda batch, generator, progress: loss_fn(model(batch), batch),
        optimiser=Optimiser("adamw", params["lr"], params["weight_decay"]),
        schedule=Schedule(params["schedule"], params["warmup_ratio"]), epochs=params["max_epochs"],
        batch_size=params["batch_size"], grad_clip=params["grad_clip"], bucket_batches=params["bucket_batches"],
        parameters=(lambda _: groups) if groups else None, before=permute_labels)
    inputs = StageInput(tuple(data.train), data.batcher, device, seed, model, params["bf16"])
    trained = loop.train(stage, inputs, fetch=lambda chunk: data.batcher(chunk, shuffled["labels"], train=True),
                         selection=None if last_epoch else loop.Selection(select, params["patience"]), on_epoch=on_epoch)
    dev_probs = (values_of(model, data, data.dev, device, params["batch_size"]) if data.dev
                 else np.zeros((0, len(data.classes)), dtype=np.float32))
    test_probs = values_of(model, data, data.test, device, params["batch_size"])
    return FoldOutcome(test_probs, dev_probs, trained.best_epoch, trained.epochs_run, trained.history)
