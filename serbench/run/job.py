"""One (fold, seed) job: build the downstream, train, test once, write the job's files.

A job needs only its :class:`Workspace` (the plan, the protocol, the encoder, and the features
and voice-activity masks of the utterances it touches, memory-mapped from the cache); any
process that rebuilds the workspace from the run directory can run it (see
:mod:`serbench.run.execute`). A job that raises leaves ``failed/<job>.json`` with its traceback
for ``serbench status``; the record goes when the job is later done.
"""

from __future__ import annotations

import random
import socket
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from serbench.api import full_training, soft_labels
from serbench.api.atomic import write_json
from serbench.api.downstream import DownstreamContext
from serbench.api.errors import SerbenchError
from serbench.api.progress import Reporter
from serbench.api.protocol import Fold, Protocol
from serbench.api.upstream import Upstream
from serbench.api.work import Job
from serbench.report import claims
from serbench.report.metrics import METRICS, score
from serbench.report.results import job_done, write_job
from serbench.report.rundir import RunDir
from serbench.run import augment, closed_form, conformance, dimensional_task, finetune, heap, robustness_eval, saved_model, stages
from serbench.run.batching import AudioBatcher, FeatureBatcher
from serbench.run.plan import Plan
from serbench.run.trainer import FoldData, train_fold


@dataclass(frozen=True)
class Workspace:
    """What a process needs to run a plan's jobs, rebuilt from the run directory alone
    (:func:`serbench.run.execute.prepare`). Frozen: the inputs a set of jobs reads (features,
    voice-activity masks, perturbed and augmented copies) are loaded into a copy of it
    (:func:`serbench.run.execute.load_inputs` returns one), never set on a workspace another
    unit may hold. ``frontend_cache`` is the one thing jobs fill: a fine-tuning run's frozen
    front-end outputs, a cache (a value computed once, the same for every job), not state."""

    plan: Plan
    run_dir: Path
    protocol: Protocol
    upstream: Upstream  # the frozen encoder (features), or a template rebuilt per job (fine-tuning)
    upstream_params: dict  # the upstream plugin's own parameters (without the host's)
    host: dict  # the host's upstream parameters: layers, finetune, freeze_frontend, ...
    layers: tuple[int, ...]
    vad_level: int | None
    features: dict | None = None  # frozen mode: utterance id -> [layers, frames, dim]
    vad_masks: dict | None = None
    frontend_cache: dict | None = field(default=None)  # fine-tuning: frozen front-end outputs, shared by jobs
    perturbed: dict | None = None  # frozen mode, --perturb: condition key -> {test id: features}
    augmented: list | None = None  # frozen mode, train.augment: one {train id: features} per copy
    dimensions: tuple[str, ...] = ()  # --task dimensional: what the run regresses (empty: it classifies)

    @property
    def tuning(self) -> bool:
        return bool(self.host["finetune"])

    def encoder(self) -> Upstream:
        """The encoder a job uses: a fresh one per job when fine-tuning, else the shared frozen one."""
        return self.plan.specs["upstream"].build(**self.upstream_params) if self.tuning else self.upstream


def claim_and_run(ws: Workspace, job: Job, reporter: Reporter) -> str:
    """Run ``job`` if this process can claim it: ``"done"`` (now or by another process meanwhile)
    or ``"held"`` (a live owner has it). An exception is recorded in ``failed/`` and re-raised."""
    claim = claims.take(ws.run_dir, *job)
    if claim is None:
        return "held"
    with claim:
        if not job_done(ws.run_dir, *job):
            try:
                run_job(ws, job, reporter)
            except Exception as exc:
                record_failure(ws.run_dir, job, exc)
                raise
            finally:
                heap.release()  # the job's freed tensors go back to the system
    RunDir(ws.run_dir).failure(job).unlink(missing_ok=True)
    return "done"


def record_failure(run_dir: Path, job: Job, exc: BaseException) -> Path:
    path = RunDir(run_dir).failure(job)
    write_json(path, {"fold": job.fold, "seed": job.seed, "host": socket.gethostname(), "time": time.time(),
                      "error": f"{type(exc).__name__}: {exc}",
                      "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))})
    return path


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _predictions_frame(proto: Protocol, fold: str, seed: int, ids: Sequence[str], probs: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "fold": fold,
            "seed": seed,
            "utterance_id": list(ids),
            "speaker": [proto.utterances[i].speaker for i in ids],
            "label": [proto.utterances[i].label for i in ids],
            "prediction": [proto.classes[k] for k in probs.argmax(1)],
        }
    )
    if any(u.gender for u in proto.utterances.values()):  # per-gender scores (serbench.report.groups); '' when unknown
        frame.insert(4, "gender", [proto.utterances[i].gender or "" for i in ids])
    for k, name in enumerate(proto.classes):
        frame[f"prob_{name}"] = probs[:, k]
    raters = soft_labels.of(proto.utterances, ids, proto.classes) if len(ids) else None
    for k, name in enumerate(proto.classes if raters is not None else ()):  # the reference distributions
        frame[f"rater_{name}"] = raters[:, k]
    return frame


def _checked_pooling(spec, dim: int, params: Mapping[str, Any]) -> torch.nn.Module:
    return conformance.check_pooling_once(spec.build(dim, **params), spec.name)


@torch.no_grad()
def _check_first_batch(model: torch.nn.Module, loss, data: FoldData, specs: Mapping, device: torch.device) -> None:
    """Two training utterances through the model and the loss before training: a plugin whose
    output breaks its contract is named now, not in a traceback later (eval mode: no dropout
    draws, so the training that follows is unchanged)."""
    model.to(device).eval()
    batch = data.batcher(list(data.train[:2]))
    features = batch.get("features")
    if isinstance(features, torch.Tensor) and not bool(torch.isfinite(features).all()):
        raise SerbenchError(f"the features of {', '.join(batch['ids'])} hold NaN/inf values: a damaged feature-cache "
                            f"entry (serbench cache clear --upstream {specs['upstream'].name}) or an upstream that "
                            "returned them")
    out = model(batch)
    conformance.check_downstream(out, model, batch, len(data.classes), specs["downstream"].name)
    conformance.check_loss(loss(out, batch), loss, specs["loss"].name)


def build_head(ws: Workspace, fold: Fold, upstream: Upstream) -> tuple[torch.nn.Module, Any]:
    """The downstream model (with its pooling) and the loss of one fold, as the plan configures them."""
    config, specs, protocol = ws.plan.config, ws.plan.specs, ws.protocol
    pooling_spec, pooling_params = specs["pooling"], config["pooling"]["params"]
    train_ids = full_training.splits(fold.train, fold.dev, config["train"])[0]
    counts = protocol.label_counts(train_ids)
    context = DownstreamContext(
        num_layers=len(ws.layers),
        dim=upstream.dim,
        frame_rate=upstream.frame_rate,
        classes=dimensional_task.head_classes(protocol, ws.dimensions, specs["downstream"]),
        make_pooling=lambda dim: _checked_pooling(pooling_spec, dim, pooling_params),
        train_counts=tuple(counts),
        loss=specs["loss"].name,
    )
    model = specs["downstream"].build(context, **config["downstream"]["params"])
    extra = {}
    if specs["loss"].meta.targets == "soft":  # the raters' distributions of the training utterances (class balance)
        extra["train_distributions"] = soft_labels.of(protocol.utterances, train_ids, protocol.classes)
    loss = specs["loss"].build(protocol.classes, counts, **config["loss"]["params"], **extra)
    return model, loss


def check_build(ws: Workspace) -> None:
    """Build the first fold's model and loss once, and read its stage declarations, so that a
    combination of parameters a plugin refuses (wavlm_cond's gender with text conditioning), a
    missing extra or a stage that would read test data is refused before the run directory
    exists, not by every job after the features were extracted. Every job seeds itself before
    it builds, so this build changes no result."""
    model, _ = build_head(ws, ws.protocol.folds[0], ws.upstream)
    closed_form.check(model, ws.tuning, ws.plan.specs["downstream"].name)
    declared = getattr(model, "stages", None)
    if declared is not None:
        stages.check(declared(), ws.plan.specs["downstream"].name)


def run_job(ws: Workspace, job: Job, reporter: Reporter) -> None:
    """One (fold, seed): build, train, test once, write the job's files."""
    the_plan, protocol, layers, features, run_dir = ws.plan, ws.protocol, ws.layers, ws.features, ws.run_dir
    config, specs = the_plan.config, the_plan.specs
    fold, seed = {f.name: f for f in protocol.folds}[job.fold], job.seed
    upstream = ws.encoder()
    train = config["train"]
    t0 = time.perf_counter()
    _seed_everything(seed)
    model, loss = build_head(ws, fold, upstream)
    groups = None
    if features is None:  # fine-tuning: the encoder is part of the model
        tuning = config["upstream"]["params"]
        finetune.prepare(upstream, tuning["freeze_frontend"], tuning["gradient_checkpointing"], tuning["spec_augment"])
        model = finetune.FineTuneModel(upstream, model, layers, ws.vad_level, ws.frontend_cache, specs["upstream"].name)
        groups = finetune.parameter_groups(model, train["lr"], tuning["lr"])
        batcher = AudioBatcher(protocol.utterances, protocol.classes, train["crop_seconds"], seed, the_plan.device,
                               max_seconds=train["max_seconds"])
    else:
        max_frames = int(train["max_seconds"] * upstream.frame_rate)
        batcher = FeatureBatcher(features, protocol.utterances, protocol.classes, the_plan.device, ws.vad_masks, max_frames)
    train_ids, dev_ids = full_training.splits(fold.train, fold.dev, train)  # select_split=none: dev joins train
    batcher = augment.wrap(batcher, train, features, ws.augmented, train_ids)  # the batcher itself when off
    data = FoldData(batcher, protocol.utterances, protocol.classes, train_ids, dev_ids, fold.test)
    method_stages = getattr(model.downstream if features is None else model, "stages", None)
    if method_stages is not None:
        model.to(the_plan.device)
        stages.run_stages(model, method_stages(), {"train": train_ids, "dev": dev_ids}, batcher, the_plan.device,
                          seed, RunDir(run_dir).stages(job), specs["downstream"].name, reporter.info,
                          reporter.task, bf16=train["bf16"])
    scoring = None
    if ws.dimensions:  # --task dimensional: targets in the batch, values out of the model, dev CCC selects
        model, batcher, scoring = dimensional_task.adapt(model, batcher, protocol, ws.dimensions, specs["downstream"],
                                                         train_ids)
        data = FoldData(batcher, protocol.utterances, dimensional_task.head_classes(protocol, ws.dimensions,
                        specs["downstream"]), train_ids, dev_ids, fold.test)  # select_split=none holds here too
        model.to(the_plan.device).calibrate(batcher(list(train_ids[: train["batch_size"]])))
    _check_first_batch(model, loss, data, specs, the_plan.device)
    if closed_form.is_closed_form(model):  # scikit-learn heads: fitted once, C chosen on dev
        outcome, fit = closed_form.fit_fold(model, data, protocol.main_metric, train, seed, the_plan.device)
        reporter.info(f"fold {fold.name} seed {seed}: C {fit['C']:g} chosen on dev ({fit['dev_score'] * 100:.2f}); "
                      f"{fit['unconverged']} of {len(fit['grid'])} fits stopped at max_iter")
    else:
        with reporter.task(f"fold {fold.name} seed {seed} (epochs)", train["max_epochs"], announce=False) as advance:
            outcome = train_fold(
                model, loss, data, protocol.main_metric, train, seed, the_plan.device,
                on_epoch=lambda epoch, dev: advance(1), groups=groups, scoring=scoring,
            )
        fit = {"best_epoch": outcome.best_epoch, "epochs_run": outcome.epochs_run}
    if features is not None and not ws.dimensions:  # serbench predict reads it (classes only); a fine-tuned encoder is not saved
        saved_model.save(ws, fold, seed, upstream, model, fit)
    if ws.dimensions:
        frame, dev_frame, metrics = dimensional_task.job_tables(protocol, fold, seed, outcome, ws.dimensions)
        headline, shown = metrics, dimensional_task.shown(metrics, ws.dimensions)
    else:
        frame = _predictions_frame(protocol, fold.name, seed, fold.test, outcome.test_probs)
        dev_frame = _predictions_frame(protocol, fold.name, seed, dev_ids, outcome.dev_probs)
        y_true = np.array([protocol.classes.index(label) for label in frame["label"]])
        metrics = score(y_true, outcome.test_probs.argmax(1), protocol.classes)
        headline = {m: metrics[m] for m in METRICS}
        shown = ", ".join(f"{m} {metrics[m] * 100:.2f}" for m in METRICS)
    record = {
        "fold": fold.name,
        "seed": seed,
        "n_train": len(train_ids),
        "n_dev": len(dev_ids),
        "n_test": len(fold.test),
        "metrics": headline,
        **({} if ws.dimensions else {
            "per_class": metrics["per_class"], "confusion": metrics["confusion"],
            "soft_metrics": soft_labels.job_metrics(protocol.utterances, fold.test, protocol.classes, outcome.test_probs)}),
        "best_epoch": outcome.best_epoch,
        "epochs_run": outcome.epochs_run,
        "dev_history": outcome.dev_history,
        "train_s": round(time.perf_counter() - t0, 3),
        "torch_threads": torch.get_num_threads(),  # CPU float reductions, so a score, can depend on it
    }
    if the_plan.config.get("perturb"):  # each condition's copy of the test set, through the same model
        robustness_eval.evaluate_job(ws, model, data, fold.test,
                                lambda probs: _predictions_frame(protocol, fold.name, seed, fold.test, probs), record)
    if ws.vad_masks is not None:  # the result's vad_no_speech annotation counts these over every job
        record["vad_no_speech"] = sorted(i for i in fold.train + fold.dev + fold.test if not ws.vad_masks[i].any())
    write_job(run_dir, record, frame, dev_frame)
    reporter.info(f"fold {fold.name} seed {seed}: {shown} (best epoch {outcome.best_epoch}/{outcome.epochs_run})")
