"""``--task dimensional``: what a run does differently when it regresses arousal, valence and
dominance instead of classifying.

The plan refuses, in one line, a method or a loss that cannot serve the task (:func:`check_plan`);
``prepare`` fixes the run's dimensions from the corpus (:func:`dimensions_of`); a job feeds the
targets to the loss (:class:`TargetBatcher`), reads one value per dimension from the model
(:class:`ValuesModel`), selects epochs on dev CCC (:class:`DimensionalScoring`) and writes
``pred_<dim>`` / ``true_<dim>`` columns (:func:`predictions_frame`). The default task,
``categorical``, leaves the configuration as it was: no ``task`` key, so run ids stay unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from serbench.api.errors import SerbenchError
from serbench.api.protocol import Protocol, Utterance
from serbench.report.dimension_results import table_metrics
from serbench.report.dimensions import DIMENSIONS, MAIN_METRIC, TASKS, score

ANY = "*"  # DownstreamMeta.dimensions: one logits column per dimension, whichever the protocol gives
TARGET_SCALING = ("train z-score; the untrained head's outputs centred on the first training batch"
                  )  # config['task']['target_scaling']: serbench's own choice, see ValuesModel


def task_of(config: Mapping) -> str:
    """The run's task: ``categorical`` unless its configuration says ``dimensional``."""
    return (config.get("task") or {}).get("name", "categorical")


def check_plan(task: str, downstream, loss, protocol_params: Mapping, train: Mapping) -> None:
    """Refuse, naming the option, a task the method, the loss or the training options cannot serve."""
    if task not in TASKS:
        raise SerbenchError(f"--task {task}: not one of {', '.join(TASKS)}")
    if task == "dimensional" and not downstream.meta.dimensions:
        raise SerbenchError(f"--task dimensional: downstream {downstream.name} has no regression head (superb regresses "
                            "any dimension; sap_gap its valence and arousal)")
    if task not in loss.meta.tasks:
        hint = " (a regression loss: add --task dimensional)" if "dimensional" in loss.meta.tasks else \
            " (choose a regression loss: --loss ccc or --loss mse)"
        raise SerbenchError(f"--loss {loss.name}: it trains the {'/'.join(loss.meta.tasks)} task, not {task}{hint}")
    if task == "categorical":
        return
    if train.get("shuffle_labels"):
        raise SerbenchError("-o train.shuffle_labels: the label-permutation check is categorical; it does not permute "
                            "dimensional targets")


PROTOCOL_TASK = "task"  # a protocol parameter the run sets from --task (msp_podcast: keep X / O rows when dimensional)


def set_protocol_task(protocol_params: dict, protocol, task: str, overrides: Mapping) -> None:
    """A protocol that reads rows differently per task declares a ``task`` parameter; the run sets
    it from ``--task`` (never by hand: ``-o protocol.task`` is refused). At the categorical default
    it is left out of the configuration, so categorical run ids stay as they were."""
    if not any(p.name == PROTOCOL_TASK for p in protocol.params):
        return
    if PROTOCOL_TASK in (overrides.get("protocol") or {}):
        raise SerbenchError(f"-o protocol.{PROTOCOL_TASK}: set by --task (give --task dimensional instead)")
    if task == "categorical":
        protocol_params.pop(PROTOCOL_TASK, None)
    else:
        protocol_params[PROTOCOL_TASK] = task


def plan_record(task: str, downstream) -> dict | None:
    """What ``config['task']`` holds (None for the categorical default, kept out of the config):
    the task and how the targets are scaled for the method (see :class:`ValuesModel`)."""
    if task == "categorical":
        return None
    own = ANY not in downstream.meta.dimensions
    return {"name": task, "target_scaling": "none: [0, 1], as the method's own regressors train" if own else TARGET_SCALING}


def default_loss(downstream) -> str | None:
    """The loss a dimensional run uses when the user names none: ``mse`` for a head with one
    column per dimension; None (the method's own) for a method with its own regressors.

    ``mse`` rather than ``ccc`` is serbench's own choice, measured: on the synthetic demo
    (``per_class=2``, fbank, superb, seed 0, default training) the CCC loss left the predicted
    means drifting far off the [0, 1] scale, where its gradient vanishes (mean CCC 0.13, MAE up
    to 3.4), while MSE kept them there (mean CCC 0.50, MAE 0.10-0.17). ``--loss ccc`` trains on
    the challenge's criterion itself."""
    return "mse" if ANY in downstream.meta.dimensions else None


def dimensions_of(protocol: Protocol, ids: Sequence[str], downstream) -> tuple[str, ...]:
    """The dimensions a run regresses: those of :data:`DIMENSIONS` that the protocol gives and the
    method predicts. A dimension present on some utterance must be present on every utterance the
    run uses (else the first without it is named); a protocol with none is refused in one line."""
    utterances = [protocol.utterances[i] for i in ids]
    given = [d for d in DIMENSIONS if any(d in u.attributes for u in utterances)]
    if not given:
        raise SerbenchError(f"--task dimensional: protocol {protocol.name} gives no arousal, valence or dominance "
                            "values (IEMOCAP, MSP-Podcast, synthetic and csv with those columns do)")
    for d in given:
        lacking = next((u for u in utterances if d not in u.attributes), None)
        if lacking is not None:
            where = lacking.origin or f"utterance {lacking.id!r}"
            raise SerbenchError(f"{where}: no {d} value, and other utterances have one: --task dimensional needs it on "
                                "every utterance (fill it in, or leave the column out)")
    wanted = downstream.meta.dimensions
    kept = tuple(d for d in given if ANY in wanted or d in wanted)
    if not kept:
        raise SerbenchError(f"--task dimensional: downstream {downstream.name} predicts {', '.join(wanted)}; protocol "
                            f"{protocol.name} gives {', '.join(given)}")
    return kept


def head_classes(protocol: Protocol, dimensions: Sequence[str], downstream) -> tuple[str, ...]:
    """What a downstream is built for: the dimension names for a one-column-per-dimension head,
    else the protocol's classes (a multitask method keeps its classifier)."""
    return tuple(dimensions) if dimensions and ANY in downstream.meta.dimensions else tuple(protocol.classes)


def targets(utterances: Sequence[Utterance], dimensions: Sequence[str]) -> np.ndarray:
    """``[N, D]`` float64 dimensional values on the protocol's [0, 1] scale."""
    return np.array([[u.attributes[d] for d in dimensions] for u in utterances], dtype=np.float64).reshape(-1, len(dimensions))


class TargetBatcher:
    """A batcher that adds ``targets`` ``[B, D]`` (float32) to every batch of the one it wraps."""

    def __init__(self, inner, utterances: Mapping[str, Utterance], dimensions: Sequence[str]):
        self.inner, self.utterances, self.dimensions = inner, utterances, tuple(dimensions)

    def lengths(self, ids: Sequence[str]) -> list[int]:
        return self.inner.lengths(ids)

    def __call__(self, ids: Sequence[str], labels: Mapping[str, str] | None = None, train: bool = False) -> dict:
        batch = self.inner(ids, labels, train=train)
        values = targets([self.utterances[i] for i in batch["ids"]], self.dimensions)
        batch["targets"] = torch.tensor(values, dtype=torch.float32, device=batch["labels"].device)
        return batch

    def __getattr__(self, name: str):  # anything else a stage or the trainer asks of the batcher
        return getattr(self.inner, name)


class ValuesModel(nn.Module):
    """The model, plus ``values`` ``[B, D]`` on the protocol's [0, 1] scale.

    A head built on the dimension names predicts each dimension standardised with the training
    split's mean and standard deviation (:data:`TARGET_SCALING`): ``values = z_k * std_k +
    mean_k``, where ``z_k`` is ``logits[:, k]`` less its mean on the first training batch before
    any training (:meth:`calibrate`; fixed afterwards). So an untrained head predicts around the
    training mean, whatever the scale of the encoder's features: without it, fbank features put
    an untrained head's outputs tens of units off the [0, 1] scale, where the CCC loss has almost
    no gradient (CCC tends to 0 as the means part) and a dimension could stay there for a whole
    run. The outputs are not divided by their spread: an untrained head's outputs barely vary
    between utterances, and dividing by that would magnify every update. That scaling is serbench's
    own choice (no paper fixes one for these heads). A method with its own regressors (sap_gap's
    ``outputs['valence']``) is read as it trains them: on the [0, 1] scale, unscaled."""

    def __init__(self, model: nn.Module, dimensions: Sequence[str], columns: bool, train: np.ndarray | None = None):
        super().__init__()
        self.model, self.dimensions, self.columns = model, tuple(dimensions), columns
        mean = train.mean(0) if columns and train is not None and len(train) else np.zeros(len(self.dimensions))
        std = train.std(0) if columns and train is not None and len(train) else np.ones(len(self.dimensions))
        self.register_buffer("centre", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("spread", torch.tensor(np.where(std > 1e-6, std, 1.0), dtype=torch.float32))
        self.register_buffer("logit_mean", torch.zeros(len(self.dimensions)))

    @torch.no_grad()
    def calibrate(self, batch: dict) -> None:
        """Centre the untrained head's outputs on ``batch`` (training utterances only), in eval mode
        (no dropout draw, so the training that follows is unchanged)."""
        if not self.columns:
            return
        was_training = self.training
        self.eval()
        self.logit_mean.copy_(self.model(batch)["logits"].float().mean(0))
        self.train(was_training)

    def forward(self, batch: dict) -> dict:
        out = self.model(batch)
        if self.columns:
            values = (out["logits"].float() - self.logit_mean) * self.spread + self.centre
        else:
            missing = [d for d in self.dimensions if d not in out]
            if missing:
                raise SerbenchError(f"the downstream declares it predicts {missing[0]} and returned no "
                                    f"outputs[{missing[0]!r}]")
            values = torch.stack([out[d].reshape(-1) for d in self.dimensions], dim=-1)
        return {**out, "values": values}


class DimensionalScoring:
    """What the trainer asks in a dimensional run: predicted values ``[N, D]`` and the dev score
    (the mean over dimensions of each CCC) that selects the epoch."""

    def __init__(self, utterances: Mapping[str, Utterance], dimensions: Sequence[str]):
        self.utterances, self.dimensions = utterances, tuple(dimensions)

    @torch.no_grad()
    def predict(self, model: nn.Module, data, ids: Sequence[str], device: torch.device, batch_size: int) -> np.ndarray:
        from serbench.run.trainer import NonFinite, _batches

        model.eval()
        found: dict[str, np.ndarray] = {}
        for chunk in _batches(data, ids, batch_size, None):
            found.update(zip(chunk, model(data.batcher(chunk))["values"].float().cpu().numpy()))
        stacked = np.stack([found[i] for i in ids]).astype(np.float64)
        if not np.isfinite(stacked).all():
            bad = next(i for i in ids if not np.isfinite(found[i]).all())
            raise NonFinite(f"the model's predictions are NaN/inf (first for utterance {bad}); nothing is scored")
        return stacked

    def score(self, values: np.ndarray, ids: Sequence[str]) -> float:
        reference = targets([self.utterances[i] for i in ids], self.dimensions)
        return score(values, reference, self.dimensions)[MAIN_METRIC]


def adapt(model: nn.Module, batcher, protocol: Protocol, dimensions: Sequence[str], downstream, train: Sequence[str]):
    """The job's model, batcher and scoring for a dimensional run (``train``: the fold's training ids)."""
    reference = targets([protocol.utterances[i] for i in train], dimensions)
    return (ValuesModel(model, dimensions, ANY in downstream.meta.dimensions, reference),
            TargetBatcher(batcher, protocol.utterances, dimensions),
            DimensionalScoring(protocol.utterances, dimensions))


def as_written(values: np.ndarray) -> np.ndarray:
    """``values`` as ``predictions.csv`` holds them (``%.6f``) and reads them back, exactly."""
    return np.array([float(f"{v:.6f}") for v in np.asarray(values, dtype=np.float64)])


def predictions_frame(protocol: Protocol, fold: str, seed: int, ids: Sequence[str], values: np.ndarray,
                      dimensions: Sequence[str]) -> pd.DataFrame:
    """A job's predictions table: ``pred_<dim>`` and ``true_<dim>`` (the [0, 1] scale) per utterance."""
    utterances = [protocol.utterances[i] for i in ids]
    frame = pd.DataFrame({"fold": fold, "seed": seed, "utterance_id": list(ids),
                          "speaker": [u.speaker for u in utterances], "label": [u.label for u in utterances]})
    if any(u.gender for u in protocol.utterances.values()):  # per-sex CCC (serbench.report.dimension_groups)
        frame.insert(4, "gender", [u.gender or "" for u in utterances])
    reference = targets(utterances, dimensions)
    for k, d in enumerate(dimensions):
        frame[f"pred_{d}"] = as_written(values[:, k])
        frame[f"true_{d}"] = as_written(reference[:, k])
    return frame


def job_tables(protocol: Protocol, fold, seed: int, outcome, dimensions: Sequence[str]):
    """A dimensional job's test and dev predictions tables and its test metrics. Values are kept
    to 6 decimals (what ``predictions.csv`` holds), and the metrics are computed from the table
    itself, so that anyone recomputing them from the file gets the same numbers."""
    frame = predictions_frame(protocol, fold.name, seed, fold.test, outcome.test_probs, dimensions)
    dev = predictions_frame(protocol, fold.name, seed, fold.dev, outcome.dev_probs, dimensions)
    return frame, dev, table_metrics(frame, dimensions)


def shown(metrics: Mapping[str, float], dimensions: Sequence[str]) -> str:
    """``ccc_arousal 0.612, ccc_valence 0.301`` for a log line."""
    return ", ".join(f"ccc_{d} {metrics[f'ccc_{d}']:.3f}" for d in dimensions)


def comparability_parts(dimensions: Sequence[str]) -> dict:
    """What a dimensional result adds to its comparability key (nothing for a categorical one):
    the task with the dimensions regressed (a mean CCC over two dimensions is not one over three)
    and the dimensional metric definitions."""
    from serbench.report.dimensions import METRIC_DEFINITIONS

    if not dimensions:
        return {}
    return {"task": f"dimensional: {', '.join(dimensions)}", "metrics": METRIC_DEFINITIONS}
