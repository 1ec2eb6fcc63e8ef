"""Intervals for dimensional metrics: the same two intervals as the categorical ones.

The Student-t interval over folds is :func:`serbench.report.stats.summarize`. The cluster interval
is :mod:`serbench.report.stats`'s design (the fold as the cluster when speakers are nested in folds,
the speaker in a single test split, both when crossed) and its delete-one-cluster jackknife
(CV3), applied to per-(speaker, job) sums rather than confusion counts: CCC, Pearson's r and
MAE are functions of the sums (:func:`serbench.report.dimensions.moments`), so a replicate that drops
a speaker or a fold recomputes each job's coefficient from the sums that remain, as the
categorical jackknife recomputes recall from the counts that remain.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from serbench.report.dimensions import MAIN_METRIC, from_moments, metric_bounds, metric_names, moments
from serbench.report.stats import design, summarize


def speaker_moments(predictions: pd.DataFrame, dimensions: Sequence[str]) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``[S, J, D, 7]`` sums per speaker, (fold, seed) job and dimension, the speakers, and each
    job's fold index (jobs in the order they first appear)."""
    jobs = list(dict.fromkeys(zip(predictions["fold"].astype(str), predictions["seed"].astype(int))))
    folds = list(dict.fromkeys(f for f, _ in jobs))
    speakers = sorted(set(predictions["speaker"].astype(str)))
    job_of = {job: j for j, job in enumerate(jobs)}
    speaker_of = {s: i for i, s in enumerate(speakers)}
    out = np.zeros((len(speakers), len(jobs), len(dimensions), 7))
    keys = zip(predictions["speaker"].astype(str), predictions["fold"].astype(str), predictions["seed"].astype(int))
    rows = np.array([(speaker_of[s], job_of[(f, seed)]) for s, f, seed in keys]).reshape(-1, 2)
    for k, d in enumerate(dimensions):
        x = predictions[f"pred_{d}"].to_numpy(dtype=np.float64)[:, None]
        y = predictions[f"true_{d}"].to_numpy(dtype=np.float64)[:, None]
        np.add.at(out[:, :, k], (rows[:, 0], rows[:, 1]), moments(x, y))
    return out, speakers, np.array([folds.index(f) for f, _ in jobs])


def table_statistic(per_job: np.ndarray, fold_of_job: np.ndarray, dimensions: Sequence[str],
                    fold_weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``[R, J, D, 7]`` sums -> ``[R]`` values of each metric: per job, then the mean over
    seeds, then over folds (fold ``f`` weighted ``fold_weights[r, f]``), as the table reports."""
    values = from_moments(per_job)  # each [R, J, D]
    present = per_job[..., 0].sum(-1) > 0  # [R, J]
    onehot = np.eye(int(np.max(fold_of_job)) + 1)[np.asarray(fold_of_job)]  # [J, F]
    count = present.astype(np.float64) @ onehot
    has = count > 0
    weight = has * (1.0 if fold_weights is None else np.asarray(fold_weights, dtype=np.float64))

    def over_folds(per: np.ndarray) -> np.ndarray:  # [R, J] -> [R]
        sums = np.where(present, per, 0.0) @ onehot
        means = np.divide(sums, count, out=np.zeros_like(sums), where=has)
        return (means * weight).sum(1) / np.maximum(weight.sum(1), 1e-300)

    out = {f"{kind}_{d}": over_folds(values[kind][..., k]) for kind in values for k, d in enumerate(dimensions)}
    out[MAIN_METRIC] = over_folds(values["ccc"].mean(-1))
    return out


def _replicates(sums: np.ndarray, fold_of_job: np.ndarray, dimensions: Sequence[str], level: str) -> dict:
    """Delete-one-cluster replicates of the table's statistic (level ``fold`` or ``speaker``)."""
    folds = int(np.max(fold_of_job)) + 1
    if level == "fold":
        drop = 1.0 - np.eye(folds)
        return table_statistic(sums.sum(0)[None].repeat(folds, 0), fold_of_job, dimensions, drop)
    keep = sums[..., 0].sum(axis=(1, 2)) > 0
    drop = (1.0 - np.eye(sums.shape[0]))[keep]
    return table_statistic(np.einsum("rs,sjdm->rjdm", drop, sums), fold_of_job, dimensions)


def _jackknife(replicates: dict[str, np.ndarray]) -> dict[str, float]:
    return {m: float((len(r) - 1) / len(r) * ((r - r.mean()) ** 2).sum()) for m, r in replicates.items()}


def cluster_interval(sums: np.ndarray, fold_of_job: np.ndarray, dimensions: Sequence[str],
                     speakers_known: bool = True) -> tuple[dict[str, list[float] | None], object]:
    """95% intervals of the table's statistic per metric at the level of
    :func:`serbench.report.stats.design`, clipped to each metric's range; None when there are too few
    clusters (the design's ``reason`` says why)."""
    plan = design(sums[..., 0].sum(-1)[..., None, None], fold_of_job, speakers_known)  # counts: utterances
    names = metric_names(dimensions)
    if plan.reason:
        return dict.fromkeys(names), plan
    estimate = table_statistic(sums.sum(0)[None], fold_of_job, dimensions)
    if plan.unit == "fold":
        variance = _jackknife(_replicates(sums, fold_of_job, dimensions, "fold"))
    elif "x" in plan.unit:
        by_speaker = _jackknife(_replicates(sums, fold_of_job, dimensions, "speaker"))
        by_fold = _jackknife(_replicates(sums, fold_of_job, dimensions, "fold"))
        variance = {m: by_speaker[m] + by_fold[m] for m in names}
    else:
        variance = _jackknife(_replicates(sums, fold_of_job, dimensions, "speaker"))
    t = float(scipy_stats.t.ppf(0.975, plan.df))
    out = {}
    for m in names:
        centre, half = float(estimate[m][0]), t * float(np.sqrt(variance[m]))
        out[m] = clipped([centre - half, centre + half], m)
    return out, plan


def clipped(interval: list[float] | None, metric: str) -> list[float] | None:
    """An interval kept inside the metric's range (a t interval near a bound overshoots)."""
    if interval is None:
        return None
    lo, hi = metric_bounds(metric)
    return [max(lo, interval[0]), min(hi, interval[1])]


def summarize_dimensional(records: list[dict], predictions: pd.DataFrame, dimensions: Sequence[str],
                          speakers_known: bool = True) -> dict:
    """Per metric, the entry a categorical summary has: mean / std / Student-t ``ci95`` over
    folds (each fold averaged over seeds), the cluster interval ``ci95_bootstrap`` of the same
    mean, the number of speakers and the cluster design."""
    sums, speakers, fold_of_job = speaker_moments(predictions, dimensions)
    intervals, plan = cluster_interval(sums, fold_of_job, dimensions, speakers_known)
    by_fold: dict[str, list[dict]] = {}
    for record in records:
        by_fold.setdefault(str(record["fold"]), []).append(record["metrics"])
    summary = {}
    for metric in metric_names(dimensions):
        per_fold = [float(np.mean([m[metric] for m in ms])) for ms in by_fold.values()]
        entry = summarize(per_fold)
        summary[metric] = {**entry, "ci95": clipped(entry["ci95"], metric), "ci95_bootstrap": intervals[metric],
                           "speakers": len(speakers) if speakers_known else None, "cluster": plan.record()}
    return summary
