"""Confidence intervals: Student-t over folds, and a speaker-level percentile bootstrap.

The t interval is what papers report (folds as samples). The bootstrap resamples whole
speakers, because one speaker's utterances are not independent draws: resampling utterances
would give intervals that are too narrow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats as scipy_stats

from serbench.metrics import METRICS, from_confusion


def summarize(values: Sequence[float]) -> dict:
    """Mean, sample std and the 95% Student-t interval (None with fewer than two values)."""
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    if x.size < 2:
        return {"mean": mean, "std": 0.0, "ci95": None}
    std = float(x.std(ddof=1))
    half = float(scipy_stats.t.ppf(0.975, x.size - 1) * std / np.sqrt(x.size))
    return {"mean": mean, "std": std, "ci95": [mean - half, mean + half]}


def speaker_bootstrap(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    speakers: Sequence[str],
    num_classes: int,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, list[float]]:
    """95% percentile intervals of UA, WA and macro-F1 over pooled predictions, resampling
    speakers with replacement. Vectorised: one confusion matrix per speaker, then each
    resample's matrix is a count-weighted sum of those."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    names, group = np.unique(np.asarray(speakers, dtype=object).astype(str), return_inverse=True)
    k2 = num_classes * num_classes
    per_speaker = np.zeros((names.size, k2), dtype=np.float64)
    np.add.at(per_speaker, (group, y_true * num_classes + y_pred), 1.0)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(names.size, np.full(names.size, 1.0 / names.size), size=resamples)
    matrices = (counts @ per_speaker).reshape(resamples, num_classes, num_classes)
    values = from_confusion(matrices)
    return {
        m: [float(np.percentile(values[m], 2.5)), float(np.percentile(values[m], 97.5))]
        for m in METRICS
    }
