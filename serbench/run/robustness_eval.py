"""Scoring a job's trained model on each ``--perturb`` condition's copy of its test set: what a
job adds to its record and files before it is sealed (the result's section is computed from them
by :func:`serbench.report.robustness.section`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from serbench.api.atomic import write_text
from serbench.api.work import Job
from serbench.report.metrics import METRICS, score
from serbench.report.results import sha256_of
from serbench.report.rundir import RunDir
from serbench.run.batching import FeatureBatcher
from serbench.run.perturb import Perturber, from_records


class PerturbedAudio:
    """Fine-tuning: an audio batcher whose waveforms are a condition's perturbed copies. Rows are
    marked not ``whole`` so the frozen front-end cache (which holds clean audio) is bypassed."""

    def __init__(self, inner, perturber: Perturber):
        self.inner, self.perturber = inner, perturber
        self.lengths = inner.lengths

    def __call__(self, ids, labels=None, train: bool = False):
        clean = self.inner.load
        self.inner.load = self.perturber.load
        try:
            batch = self.inner(ids, labels, train)
        finally:
            self.inner.load = clean
        batch["whole"] = [False] * len(ids)
        return batch


def evaluate_job(ws, model, data, test: Sequence[str], frame_of: Callable[[np.ndarray], pd.DataFrame],
                 record: dict) -> None:
    """Score ``model`` (best weights restored) on every condition's copy of ``test``; write the
    job's perturbed predictions and add their metrics and the file's sha256 to ``record``."""
    from serbench.run.trainer import predict

    config = ws.plan.config
    frames, conditions = [], {}
    classes = list(ws.protocol.classes)
    for condition in from_records(config["perturb"]):
        if ws.features is None:  # fine-tuning: the encoder reads perturbed audio (augmentation's wrapper set aside)
            batcher = PerturbedAudio(getattr(data.batcher, "inner", data.batcher), Perturber(condition))
        else:  # the clean voice-activity masks: a perturbation keeps the length, so the frames align
            max_frames = int(config["train"]["max_seconds"] * ws.upstream.frame_rate)
            batcher = FeatureBatcher(ws.perturbed[condition.key], ws.protocol.utterances, classes, ws.plan.device,
                                     ws.vad_masks, max_frames)
        probs = predict(model, replace(data, batcher=batcher), test, ws.plan.device, config["train"]["batch_size"])
        frame = frame_of(probs)
        frame.insert(0, "condition", condition.key)
        frames.append(frame)
        y_true = np.array([classes.index(label) for label in frame["label"]])
        conditions[condition.key] = {m: v for m, v in score(y_true, probs.argmax(1), classes).items() if m in METRICS}
    text = pd.concat(frames, ignore_index=True).to_csv(index=False, float_format="%.6f")
    path = RunDir(ws.run_dir).job_perturbed(Job(record["fold"], record["seed"]))
    write_text(path, text)
    record["robustness"] = {"file": path.name, "sha256": sha256_of(text.encode("utf-8")), "conditions": conditions}
