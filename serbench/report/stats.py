"""Confidence intervals: Student-t over folds, and a cluster interval at the level where the
dependence lives.

The t interval is what papers report (folds as samples). The second interval treats the
*cluster* as the unit of independence, because one speaker's utterances are not independent
draws, and in cross-validation neither are the speakers of one fold: they share that fold's
model, and in IEMOCAP a session (two actors, one recording set-up). Which level is resampled
follows the design read from the predictions (:func:`design`):

- **speakers nested in two or more folds** (every speaker is tested in one fold only: IEMOCAP's
  sessions, leave-one-speaker-out, speaker-independent k-fold) -> the **fold** is the cluster.
  Resampling speakers there ignores a shared fold effect (simulated: 82% coverage at nominal
  95% with one) and the standard advice for hierarchical data is to resample the highest
  level only (Davison & Hinkley 1997, *Bootstrap Methods*, §3.8; Field & Welsh 2007, JRSS-B
  69:369; Ren et al. 2010, *J. Appl. Stat.* 37:1487). With one speaker per fold this *is*
  the speaker level. For the table's statistic (a mean over folds) this interval equals the
  Student-t one: honesty costs the apparent extra precision of counting speakers.
- **one fold (a single test split, e.g. MSP-Podcast)** -> the **speaker** is the cluster;
  the statistic is recomputed from the confusion counts of the speakers kept.
- **speakers tested in several folds** (a speaker-dependent protocol) -> speakers and folds
  are crossed; the variance is the sum of the speaker and the fold components, the
  conservative two-way rule (Cameron, Gelbach & Miller 2011, *J. Bus. Econ. Stat.* 29:238,
  without the subtracted intersection term, as Owen 2007's pigeonhole bootstrap, *Ann.
  Appl. Stat.* 1:246, is conservative), with min(S, F) - 1 degrees of freedom.

The variance of each component is the delete-one-cluster jackknife, and the interval is
estimate ± t(G-1) x jackknife standard error, G the number of clusters: the "CV3" choice that
MacKinnon, Nielsen & Webb (2023, *J. Econometrics* 232:272) recommend when clusters are few or
unequal in size, where the plug-in bootstrap variance (too small by (G-1)/G, and smaller
still for ratios such as recall) under-covers. It is deterministic (no resampling seed), and
its coverage is simulated for every design in ``benchmarks/stats/coverage.py`` (table in
docs/protocols-and-statistics.md; ``tests/report/test_coverage.py`` asserts >= 93%). With fewer than :data:`MIN_CLUSTERS`
clusters there is no interval, and the reason is recorded.

When the protocol does not know its speakers (each utterance its own pseudo-speaker), a
single-fold interval is utterance-level, labelled so: too narrow if a speaker's utterances are
correlated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as scipy_stats

from serbench.report.metrics import METRICS, from_confusion

# what a scored table without speakers says about its interval (serbench score, both tasks)
SPEAKERS_UNKNOWN_NOTE = ("speakers unknown: the resampling interval is utterance-level and too narrow if "
                         "utterances of a speaker are correlated")
FOLDS_WITHOUT_SPEAKERS_NOTE = ("speakers unknown (one pseudo-speaker per utterance): the interval resamples folds, "
                               "which holds only if no speaker is tested in two folds")

MIN_CLUSTERS = 5  # fewer: the t quantile exceeds 3.2 and a jackknife of 4 values is no estimate of spread
METHOD = "delete-one-cluster jackknife (CV3), estimate ± t(df) x SE, df = effective clusters - 1"


def summarize(values: Sequence[float]) -> dict:
    """Mean, sample std and the 95% Student-t interval (None with fewer than two values)."""
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    if x.size < 2:
        return {"mean": mean, "std": 0.0, "ci95": None}
    std = float(x.std(ddof=1))
    half = float(scipy_stats.t.ppf(0.975, x.size - 1) * std / np.sqrt(x.size))
    return {"mean": mean, "std": std, "ci95": [mean - half, mean + half]}


def clip(interval: list[float] | None) -> list[float] | None:
    """An interval of a proportion kept inside [0, 1] (a t interval near 0 or 1 overshoots)."""
    return None if interval is None else [max(0.0, interval[0]), min(1.0, interval[1])]


def speaker_counts(job_index: np.ndarray, speaker_index: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                   speakers: int, jobs: int, num_classes: int) -> np.ndarray:
    """Confusion counts ``[S, J, K, K]`` per speaker and (fold, seed) job, one row per prediction."""
    counts = np.zeros((speakers, jobs, num_classes * num_classes), dtype=np.float64)
    np.add.at(counts, (np.asarray(speaker_index), np.asarray(job_index),
                       np.asarray(y_true, dtype=np.int64) * num_classes + np.asarray(y_pred, dtype=np.int64)), 1.0)
    return counts.reshape(speakers, jobs, num_classes, num_classes)


def fold_statistic(counts: np.ndarray, fold_of_job: np.ndarray, weights: np.ndarray | None = None,
                   fold_weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The table's statistic from per-speaker counts ``[S, J, K, K]``; ``weights`` ``[R, S]``
    (speaker multiplicities) and ``fold_weights`` ``[R, F]`` give ``R`` replicates (see
    :func:`job_statistic`)."""
    if weights is None:
        weights = np.ones((1 if fold_weights is None else len(fold_weights), counts.shape[0]))
    return job_statistic(np.einsum("rs,sjkl->rjkl", weights, counts), fold_of_job, fold_weights)


def job_statistic(per_job: np.ndarray, fold_of_job: np.ndarray,
                  fold_weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``[R, J, K, K]`` confusion counts per (fold, seed) job -> ``[R]`` values of the table's
    statistic: each metric per job, the mean over seeds, then over folds (a fold counted
    ``fold_weights[r, f]`` times, once by default); a fold whose jobs have no utterance in a
    replicate is left out of that replicate's mean."""
    values = from_confusion(per_job)
    present = per_job.sum(axis=(-1, -2)) > 0  # [R, J]
    fold_of_job = np.asarray(fold_of_job)
    onehot = np.eye(int(fold_of_job.max()) + 1)[fold_of_job]  # [J, F]
    count = present.astype(np.float64) @ onehot  # [R, F]
    has = count > 0
    weight = has * (1.0 if fold_weights is None else np.asarray(fold_weights, dtype=np.float64))
    out = {}
    for metric in METRICS:
        sums = np.where(present, values[metric], 0.0) @ onehot
        means = np.divide(sums, count, out=np.zeros_like(sums), where=has)
        out[metric] = (means * weight).sum(1) / np.maximum(weight.sum(1), 1e-300)
    return out


@dataclass(frozen=True)
class Design:
    """Which level is resampled, how many clusters it has, and why there is no interval
    (``reason``) when there is none."""

    unit: str  # "fold", "speaker", "utterance", "speaker x fold"
    clusters: int
    df: float  # the t quantile's degrees of freedom: effective clusters - 1
    reason: str | None = None
    method: str = METHOD

    def describe(self) -> str:
        """``5 folds``, ``120 speakers``, ``10 speakers x 5 folds`` (table headers)."""
        if self.unit == "speaker x fold":
            return f"{self.clusters} speakers x folds"
        return f"{self.clusters} {self.unit}s"

    def record(self) -> dict:
        return asdict(self)


def design(counts: np.ndarray, fold_of_job: np.ndarray, speakers_known: bool = True) -> Design:
    """The resampling design of a run's test predictions (see the module docstring)."""
    tested = counts.sum(axis=(2, 3)) > 0  # [S, J]
    fold_of_job = np.asarray(fold_of_job)
    folds = int(fold_of_job.max()) + 1
    in_fold = (tested.astype(np.float64) @ np.eye(folds)[fold_of_job]) > 0  # [S, F]
    speakers = int(in_fold.any(1).sum())
    person = "speaker" if speakers_known else "utterance"
    size = counts.sum(axis=(1, 2, 3))
    size = size[size > 0]
    effective = float(size.sum() ** 2 / (size ** 2).sum()) if size.size else 0.0  # Kish: speakers of equal weight
    if folds >= 2 and (in_fold.sum(1) <= 1).all():
        unit, clusters, df = "fold", folds, folds - 1.0  # folds weigh equally in the table's mean
    elif folds == 1:
        unit, clusters, df = person, speakers, effective - 1.0
    else:
        unit, clusters, df = f"{person} x fold", min(speakers, folds), min(effective, folds) - 1.0
    reason = None
    if clusters < MIN_CLUSTERS:
        what = {"fold": f"{folds} fold{'s' if folds != 1 else ''} (speakers nested in folds)",
                person: f"{speakers} {person}{'s' if speakers != 1 else ''} in one test split"}
        reason = (f"{what.get(unit, f'{speakers} {person}s crossed with {folds} folds')}: fewer than "
                  f"{MIN_CLUSTERS} independent clusters, no honest interval")
    return Design(unit, clusters, round(max(df, 1.0), 3), reason)


def _jackknife_variance(counts: np.ndarray, fold_of_job: np.ndarray, level: str) -> dict[str, float]:
    """Delete-one-cluster jackknife variance of the table's statistic, per metric."""
    folds = int(np.asarray(fold_of_job).max()) + 1
    if level == "fold":
        drop = 1.0 - np.eye(folds)
        replicates = fold_statistic(counts, fold_of_job, fold_weights=drop)
    else:
        keep = counts.sum(axis=(1, 2, 3)) > 0
        drop = (1.0 - np.eye(counts.shape[0]))[keep]
        replicates = fold_statistic(counts, fold_of_job, weights=drop)
    g = len(drop)
    return {m: float((g - 1) / g * ((r - r.mean()) ** 2).sum()) for m, r in replicates.items()}


def cluster_interval(counts: np.ndarray, fold_of_job: np.ndarray,
                     speakers_known: bool = True) -> tuple[dict[str, list[float] | None], Design]:
    """95% intervals of the table's statistic (:func:`fold_statistic`) per metric at the
    level of :func:`design`, clipped to [0, 1]; None per metric when the design has too few
    clusters."""
    plan = design(counts, fold_of_job, speakers_known)
    if plan.reason:
        return dict.fromkeys(METRICS), plan
    estimate = fold_statistic(counts, fold_of_job)
    if plan.unit == "fold":
        variance = _jackknife_variance(counts, fold_of_job, "fold")
    elif "x" in plan.unit:
        by_speaker = _jackknife_variance(counts, fold_of_job, "speaker")
        by_fold = _jackknife_variance(counts, fold_of_job, "fold")
        variance = {m: by_speaker[m] + by_fold[m] for m in METRICS}
    else:
        variance = _jackknife_variance(counts, fold_of_job, "speaker")
    t = float(scipy_stats.t.ppf(0.975, plan.df))
    out = {}
    for m in METRICS:
        centre, half = float(estimate[m][0]), t * float(np.sqrt(variance[m]))
        out[m] = clip([centre - half, centre + half])
    return out, plan
