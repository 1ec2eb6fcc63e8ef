"""Training one downstream on one fold: AdamW, early stopping on dev, best-on-dev weights.

Model selection reads dev only; test is predicted once, after the best weights are restored.
The one exception is asked for by name (``train.select_split=test``): a paper that reported
its best epoch on the scored split itself (Diatlova et al. on MSP-Podcast's Development) is
reproduced only by selecting there; the config records it and the run log says it is optimistic.
Evaluation runs in batches of the training batch size, longest utterances first, so its
memory stays within what training needs (twice the size set the GMP-ATL demo's peak).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from serbench.api.errors import SerbenchError
from serbench.api.protocol import Utterance
from serbench.api.specs import Param
from serbench.report.metrics import confusion, from_confusion
from serbench.run.batching import bucketed

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
          "(a paper's best-epoch protocol; optimistic, recorded)", ("dev", "test")),
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


def schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float, kind: str):
    """Linear warm-up over ``warmup_ratio`` of the steps, then constant or cosine to zero."""
    warmup = int(round(warmup_ratio * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if kind == "constant":
            return 1.0
        progress = (step - warmup) / max(total_steps - warmup, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


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
) -> FoldOutcome:
    """Train on ``data.train``, select on ``data.dev``, predict ``data.test`` once.
    ``groups`` are optimizer parameter groups (default: every parameter at ``params['lr']``)."""
    generator = torch.Generator().manual_seed(seed)
    index = {c: k for k, c in enumerate(data.classes)}
    labels = dev_map = None
    select_ids = data.test if params.get("select_split", "dev") == "test" else data.dev
    dev_labels = np.array([index[data.utterances[i].label] for i in select_ids])
    if params["shuffle_labels"]:  # the control: training *and* model selection see permuted labels
        permuted = torch.randperm(len(data.train), generator=generator).tolist()
        labels = {i: data.utterances[data.train[j]].label for i, j in zip(data.train, permuted)}
        dev_order = torch.randperm(len(select_ids), generator=generator).numpy()
        dev_labels = dev_labels[dev_order]  # selecting epochs on true dev labels would leak them
        dev_map = {i: data.classes[k] for i, k in zip(select_ids, dev_labels)}
    model.to(device)
    groups = groups or [{"params": [p for p in model.parameters() if p.requires_grad]}]
    optimizer = torch.optim.AdamW(groups, lr=params["lr"], weight_decay=params["weight_decay"])
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=params["bf16"])
    steps_per_epoch = math.ceil(len(data.train) / params["batch_size"])
    scheduler = schedule(optimizer, steps_per_epoch * params["max_epochs"], params["warmup_ratio"], params["schedule"])
    best_score, best_epoch, best_state, history = -np.inf, 0, None, []
    epoch = 0
    for epoch in range(1, params["max_epochs"] + 1):
        model.train()
        if hasattr(data.batcher, "set_epoch"):  # training augmentation draws another copy per epoch
            data.batcher.set_epoch(epoch)
        total = torch.zeros((), device=device)  # checked once per epoch: no host sync per batch
        for chunk in _batches(data, data.train, params["batch_size"], generator, params["bucket_batches"]):
            batch = data.batcher(chunk, labels, train=True)
            with autocast:
                loss = loss_fn(model(batch), batch)
            total += loss.detach().float()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if params["grad_clip"] > 0:
                nn.utils.clip_grad_norm_(model.parameters(), params["grad_clip"])
            optimizer.step()
            scheduler.step()
        if not torch.isfinite(total):
            raise SerbenchError(f"training loss is {total.item()} at epoch {epoch}: training diverged or the inputs hold "
                                "NaN/inf (lower train.lr, or check the features); nothing is scored")
        if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
            raise SerbenchError(f"the weights turned NaN/inf in epoch {epoch}: training diverged (lower train.lr); "
                                "nothing is scored")
        try:
            if params["select_on"] == "loss":
                score = -dev_loss(model, loss_fn, data, params["batch_size"], dev_map, select_ids)
            else:
                score = dev_score(predict(model, data, select_ids, device, params["batch_size"]), dev_labels, main_metric)
        except NonFinite as exc:
            raise SerbenchError(f"after epoch {epoch}, {exc} (training diverged? lower train.lr)") from None
        if not math.isfinite(score):
            raise SerbenchError(f"after epoch {epoch}, the dev {params['select_on']} is {score}: training diverged "
                                "(lower train.lr); nothing is scored")
        history.append(score)
        if on_epoch:
            on_epoch(epoch, score)
        if score > best_score:
            best_score, best_epoch = score, epoch
            best_state = copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= params["patience"]:
            break
    model.load_state_dict(best_state)
    dev_probs = predict(model, data, data.dev, device, params["batch_size"])
    test_probs = predict(model, data, data.test, device, params["batch_size"])
    return FoldOutcome(test_probs, dev_probs, best_epoch, epoch, history)
