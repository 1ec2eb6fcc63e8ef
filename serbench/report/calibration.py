"""Calibration of the predicted probabilities: is a model that says 90% right 90% of the time?

Scored from the ``prob_<class>`` columns a run writes (``predictions.csv``), per (fold, seed)
job and then averaged as the accuracy metrics are (mean over seeds, then over folds):

- **ECE**, top-label expected calibration error with 15 equal-width confidence bins
  (Guo, Pleiss, Sun & Weinberger 2017, *On Calibration of Modern Neural Networks*, ICML;
  bin ``m`` holds the confidences in ``((m-1)/15, m/15]``): ``sum_m |B_m|/n |acc(B_m) - conf(B_m)|``.
- **classwise ECE** (Kull et al. 2019, *Beyond temperature scaling*, NeurIPS): the same with
  the probability of every class ``k`` against ``y == k``, averaged over the classes.
- **Brier** score, multi-class: ``mean_i sum_k (p_ik - [y_i = k])^2`` (Brier 1950), 0 to 2.
- **NLL**: ``mean_i -log p_i,y_i``.

Intervals: every metric here is a ratio of sums over utterances, so each (speaker, job) cell
keeps its sums and the interval is the one of :mod:`serbench.report.stats` (delete-one-cluster
jackknife at the level where the dependence lives, :func:`serbench.report.stats.design`) applied to
these sums: the same clusters, degrees of freedom and minimum as the accuracy metrics.

serbench's own choices (none is a paper's): a file keeps probabilities to 6 decimals, so a
probability read as 0 is floored at :data:`PROB_FLOOR` (half the file's resolution) before the
logarithm, and each row is renormalised to sum to 1. **Temperature scaling** (Guo et al. 2017)
is off by default (``-o report.temperature_scaling=true``): one temperature per (fold, seed)
job, fitted by minimising the NLL of that job's *dev* predictions (``folds/*.dev.csv``, kept by
every job); the test labels are never read to fit it. The log-probabilities serve as logits
(softmax is unchanged by a per-row constant, so ``softmax(log p / T) = softmax(z / T)``). It
never changes a prediction (the arg-max is kept), so only the calibration metrics move; they
are reported beside the raw ones, never instead of them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as scipy_stats

from serbench.api.errors import SerbenchError
from serbench.report.stats import MIN_CLUSTERS, Design, design, speaker_counts

BINS = 15
PROB_FLOOR = 5e-7  # half the 6-decimal resolution of a predictions file
CALIBRATION_METRICS = ("ece", "classwise_ece", "brier", "nll")
NAMES = {"ece": "ECE (top-label, 15 bins)", "classwise_ece": "classwise ECE", "brier": "Brier", "nll": "NLL"}
TEMPERATURE_BOUNDS = (0.05, 20.0)
UPPER = {"ece": 1.0, "classwise_ece": 1.0, "brier": 2.0, "nll": None}


def prob_columns(classes: list[str]) -> list[str]:
    return [f"prob_{c}" for c in classes]


def probabilities(frame: pd.DataFrame, classes: list[str], where: str) -> np.ndarray:
    """``[N, K]`` probabilities of ``frame``'s ``prob_<class>`` columns, floored and renormalised;
    refused, naming ``where``, when one is missing or not a number in [0, 1]."""
    columns = prob_columns(classes)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SerbenchError(f"{where}: no {missing[0]!r} column (calibration needs a probability per class)")
    probs = frame[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(probs) | (probs < 0) | (probs > 1 + 1e-6)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise SerbenchError(f"{where}: row {row + 1} {columns[col]} is {frame[columns[col]].iloc[row]!r}, not a "
                            "probability in [0, 1]")
    probs = np.maximum(probs, PROB_FLOOR)
    return probs / probs.sum(1, keepdims=True)


def bin_index(confidence: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Bin ``m`` (0-based) of ``((m)/bins, (m+1)/bins]``; a confidence of 0 goes to the first bin."""
    return np.clip(np.ceil(np.asarray(confidence) * bins).astype(np.int64) - 1, 0, bins - 1)


def sums(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Per utterance, the additive pieces every metric here is made of, ``[N, P]``: count,
    squared error, -log p_y, then per top-label bin (count, confidence, correct), then per class
    and bin (count, probability, is-that-class). Sums of rows give any subset's metrics."""
    n, k = probs.shape
    labels = np.asarray(labels, dtype=np.int64)
    onehot = np.eye(k)[labels]
    confidence = probs.max(1)
    correct = (probs.argmax(1) == labels).astype(np.float64)
    top = np.zeros((n, bins, 3))
    top[np.arange(n), bin_index(confidence, bins)] = np.stack([np.ones(n), confidence, correct], 1)
    per_class = np.zeros((n, k, bins, 3))
    rows, cols = np.repeat(np.arange(n), k), np.tile(np.arange(k), n)
    per_class[rows, cols, bin_index(probs, bins).ravel()] = np.stack(
        [np.ones(n * k), probs.ravel(), onehot.ravel()], 1)
    head = np.stack([np.ones(n), ((probs - onehot) ** 2).sum(1), -np.log(probs[np.arange(n), labels])], 1)
    return np.concatenate([head, top.reshape(n, -1), per_class.reshape(n, -1)], 1)


def from_sums(total: np.ndarray, num_classes: int, bins: int = BINS) -> dict[str, np.ndarray]:
    """The metrics from summed pieces ``[..., P]`` (see :func:`sums`); NaN where nothing was summed."""
    total = np.asarray(total, dtype=np.float64)
    n = total[..., 0]
    top = total[..., 3:3 + 3 * bins].reshape(*total.shape[:-1], bins, 3)
    per_class = total[..., 3 + 3 * bins:].reshape(*total.shape[:-1], num_classes, bins, 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "ece": np.abs(top[..., 2] - top[..., 1]).sum(-1) / n,
            "classwise_ece": (np.abs(per_class[..., 2] - per_class[..., 1]).sum(-1) / n[..., None]).mean(-1),
            "brier": total[..., 1] / n,
            "nll": total[..., 2] / n,
        }


def score(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """ECE, classwise ECE, Brier and NLL of one set of predictions."""
    return {m: float(v) for m, v in from_sums(sums(probs, labels).sum(0), probs.shape[1]).items()}


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the NLL of ``probs`` (dev predictions) rescaled as
    ``softmax(log p / T)``, searched on log T within :data:`TEMPERATURE_BOUNDS`."""
    logits = np.log(probs)
    labels = np.asarray(labels, dtype=np.int64)

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - z.max(1, keepdims=True)
        return float((np.log(np.exp(z).sum(1)) - z[np.arange(len(z)), labels]).mean())

    low, high = np.log(TEMPERATURE_BOUNDS[0]), np.log(TEMPERATURE_BOUNDS[1])
    found = optimize.minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(found.x))


def rescale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)``: the arg-max is unchanged."""
    z = np.log(probs) / temperature
    z = np.exp(z - z.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


# --- the table's statistic and its interval ------------------------------------------------

def cell_sums(frame: pd.DataFrame, probs: np.ndarray, classes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``[S, J, P]`` sums per speaker and (fold, seed) job, the fold of each job, and the
    ``[S, J, K, K]`` confusion counts :func:`serbench.report.stats.design` reads."""
    jobs = list(dict.fromkeys(zip(frame["fold"].astype(str), frame["seed"].astype(int))))
    folds = list(dict.fromkeys(f for f, _ in jobs))
    job_of = {job: j for j, job in enumerate(jobs)}
    job_index = np.array([job_of[(str(f), int(s))] for f, s in zip(frame["fold"], frame["seed"])])
    speakers = sorted(set(frame["speaker"].astype(str)))
    speaker_index = frame["speaker"].astype(str).map({s: i for i, s in enumerate(speakers)}).to_numpy()
    index = {c: k for k, c in enumerate(classes)}
    labels = frame["label"].map(index).to_numpy()
    pieces = sums(probs, labels)
    cells = np.zeros((len(speakers), len(jobs), pieces.shape[1]))
    np.add.at(cells, (speaker_index, job_index), pieces)
    counts = speaker_counts(job_index, speaker_index, labels, probs.argmax(1), len(speakers), len(jobs), len(classes))
    return cells, np.array([folds.index(f) for f, _ in jobs]), counts


def table_statistic(cells: np.ndarray, fold_of_job: np.ndarray, value: Callable[[np.ndarray], dict],
                    weights: np.ndarray | None = None, fold_weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``[R]`` replicates of each metric: ``cells`` ``[S, J, P]`` weighted per speaker
    (``weights`` ``[R, S]``), each job's metric by ``value``, the mean over a fold's seeds, then
    over folds (weighted by ``fold_weights`` ``[R, F]``), as :func:`serbench.report.stats.job_statistic`
    does for the accuracy metrics; a job with nothing left is left out."""
    if weights is None:
        weights = np.ones((1 if fold_weights is None else len(fold_weights), cells.shape[0]))
    per_job = np.einsum("rs,sjp->rjp", weights, cells)
    values = value(per_job)
    present = per_job[..., 0] > 0
    onehot = np.eye(int(np.max(fold_of_job)) + 1)[np.asarray(fold_of_job)]
    count = present.astype(np.float64) @ onehot
    has = count > 0
    weight = has * (1.0 if fold_weights is None else np.asarray(fold_weights, dtype=np.float64))
    out = {}
    for metric, v in values.items():
        means = np.divide(np.where(present, v, 0.0) @ onehot, count, out=np.zeros_like(count), where=has)
        out[metric] = (means * weight).sum(1) / np.maximum(weight.sum(1), 1e-300)
    return out


def jackknife(statistic: Callable[..., dict], plan: Design, speakers: int, folds: int,
              kept: np.ndarray | None = None, kept_folds: np.ndarray | None = None) -> dict[str, float]:
    """Delete-one-cluster jackknife variance of ``statistic(weights=..., fold_weights=...)`` at
    ``plan``'s level (the sum of the speaker and the fold components when they are crossed);
    ``kept`` and ``kept_folds`` mark the speakers and folds that are clusters (those with
    predictions of what is measured)."""
    kept = np.ones(speakers, dtype=bool) if kept is None else kept
    kept_folds = np.ones(folds, dtype=bool) if kept_folds is None else kept_folds
    parts = []
    if plan.unit == "fold" or "x" in plan.unit:
        parts.append(statistic(fold_weights=(1.0 - np.eye(folds))[kept_folds]))
    if plan.unit != "fold":
        parts.append(statistic(weights=(1.0 - np.eye(speakers))[kept]))
    variance: dict[str, float] = {}
    for replicates in parts:
        for m, r in replicates.items():
            g = len(r)
            variance[m] = variance.get(m, 0.0) + float((g - 1) / g * ((r - r.mean()) ** 2).sum())
    return variance


def interval(estimate: float, variance: float, plan: Design, low: float | None = None,
             high: float | None = None) -> list[float] | None:
    """estimate ± t(df) x SE kept inside [low, high], or None when the design has too few clusters."""
    if plan.reason or not np.isfinite(variance) or not np.isfinite(estimate):
        return None
    half = float(scipy_stats.t.ppf(0.975, plan.df)) * float(np.sqrt(variance))
    lower, upper = estimate - half, estimate + half
    return [lower if low is None else max(low, lower), upper if high is None else min(high, upper)]


def summarize(frame: pd.DataFrame, probs: np.ndarray, classes: list[str], speakers_known: bool = True) -> dict:
    """Per metric: the table's statistic (each job's value, mean over seeds, then folds) and its
    95% cluster interval, with the resampling design."""
    cells, fold_of_job, counts = cell_sums(frame, probs, classes)
    plan = design(counts, fold_of_job, speakers_known)

    def value(per_job: np.ndarray) -> dict:
        return from_sums(per_job, len(classes))

    def statistic(weights=None, fold_weights=None):
        return table_statistic(cells, fold_of_job, value, weights, fold_weights)

    estimate = {m: float(v[0]) for m, v in statistic().items()}
    variance = jackknife(statistic, plan, cells.shape[0], int(fold_of_job.max()) + 1, cells[..., 0].sum(1) > 0)
    return {m: {"mean": estimate[m], "ci95": interval(estimate[m], variance[m], plan, 0.0, UPPER[m])}
            for m in CALIBRATION_METRICS} | {"cluster": plan.record(), "bins": BINS}


def temperature_scaled(frame: pd.DataFrame, probs: np.ndarray, classes: list[str],
                       speakers_known: bool, dev_path: Callable[[str, int], Path]) -> dict:
    """The test predictions' calibration after each job's temperature, fitted on that job's dev
    predictions (``dev_path(fold, seed)``) only; the temperatures are recorded per job."""
    scaled = probs.copy()
    temperatures = {}
    index = {c: k for k, c in enumerate(classes)}
    for (fold, seed), rows in frame.groupby(["fold", "seed"], sort=False).indices.items():
        path = dev_path(str(fold), int(seed))
        try:
            dev = pd.read_csv(path, dtype={"fold": str, "speaker": str, "utterance_id": str})
        except FileNotFoundError:
            raise SerbenchError(f"{path}: missing; temperature scaling is fitted on each job's dev predictions "
                                "(runs made before dev predictions were kept cannot be scaled)") from None
        labels = dev["label"].map(index)
        if labels.isna().any():
            raise SerbenchError(f"{path}: label {dev['label'][labels.isna()].iloc[0]!r} is not one of {', '.join(classes)}")
        t = fit_temperature(probabilities(dev, classes, str(path)), labels.to_numpy())
        temperatures[f"{fold}/{seed}"] = round(t, 6)
        scaled[rows] = rescale(probs[rows], t)
    return {**summarize(frame, scaled, classes, speakers_known),
            "temperatures": temperatures, "fitted_on": "each job's dev predictions (folds/*.dev.csv)"}


def too_few_note(entry: dict) -> str:
    """Why there is no interval (the design's reason), for tables."""
    return str((entry.get("cluster") or {}).get("reason") or f"fewer than {MIN_CLUSTERS} clusters")
