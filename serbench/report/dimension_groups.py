"""Groups and fairness for a dimensional result (``--task dimensional``): each dimensional
metric (CCC, Pearson r, MAE per dimension, and the mean CCC) per sex and per speaker with
intervals, the female - male difference with its interval, and audEERING's fairness flag.

The design is :mod:`serbench.report.groups`' for the categorical metrics, applied to the sums
every dimensional metric is a function of (:func:`serbench.report.dimensions.moments`): a
group's value is the table's statistic (each job's coefficient on the group's utterances, the
mean over seeds, then over folds); its interval deletes one of the group's clusters at a time
at the level the whole run is resampled at (folds, speakers, or both when crossed); the
difference ``F - M`` is one statistic recomputed on the same replicates, so the covariance of
two groups tested by one model is in its interval.

**Fairness.** audEERING's ser-tests ("Fairness Sex", thresholds for arousal, valence and
dominance: https://audeering.github.io/ser-tests/method-tests.html) fail a model when the CCC of
one sex differs from the CCC over the combined test set by more than 0.075, per dimension.
serbench checks ``|ccc_<dim>(sex) - ccc_<dim>(all)|`` for every dimension the result has, at
``-o report.fairness_threshold`` (audEERING's 0.075 by default), on the table's statistic.
audEERING's per-bin precision and recall tests (outputs cut into 4 bins, threshold 0.1) are not
implemented. As for the categorical flag, audEERING balances each sex to 1000 samples with
similar truth values first; serbench scores every test utterance (group sizes recorded): its own
choice.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from serbench.report.calibration import interval, jackknife
from serbench.report.dimension_stats import cluster_interval as dimension_interval
from serbench.report.dimension_stats import table_statistic
from serbench.report.dimensions import metric_bounds, metric_names, moments
from serbench.report.groups import DIFFERENCE, GENDERS, SPEAKER_INTERVAL, _group_design, gender_column, speaker_rows, spread
from serbench.report.stats import design

FAIRNESS_RULE = ("|ccc_<dim>(sex) - ccc_<dim>(all test utterances)| <= threshold, for each sex and dimension "
                 "(audEERING ser-tests, Fairness Sex: Concordance Correlation Coeff Female / Male)")


def _axes(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Each row's job and speaker index, each job's fold index, and the speakers."""
    jobs = list(dict.fromkeys(zip(frame["fold"].astype(str), frame["seed"].astype(int))))
    folds = list(dict.fromkeys(f for f, _ in jobs))
    job_of = {job: j for j, job in enumerate(jobs)}
    job_index = np.array([job_of[(str(f), int(s))] for f, s in zip(frame["fold"], frame["seed"])], dtype=np.int64)
    speakers = sorted(set(frame["speaker"].astype(str)))
    speaker_index = frame["speaker"].astype(str).map({s: i for i, s in enumerate(speakers)}).to_numpy()
    return job_index, speaker_index, np.array([folds.index(f) for f, _ in jobs], dtype=np.int64), speakers


def sums(frame: pd.DataFrame, dimensions: Sequence[str], rows: np.ndarray, job_index: np.ndarray,
         cluster_index: np.ndarray, clusters: int) -> np.ndarray:
    """``[C, J, D, 7]`` sums of the rows where ``rows`` is True, per cluster (speaker or
    utterance), job and dimension; the other rows add nothing."""
    jobs = int(job_index.max()) + 1
    out = np.zeros((clusters, jobs, len(dimensions), 7))
    keep = np.asarray(rows, dtype=bool)
    for k, d in enumerate(dimensions):
        x = frame[f"pred_{d}"].to_numpy(dtype=np.float64)[keep, None]
        y = frame[f"true_{d}"].to_numpy(dtype=np.float64)[keep, None]
        np.add.at(out[:, :, k], (cluster_index[keep], job_index[keep]), moments(x, y))
    return out


def _statistic(part: np.ndarray, fold_of_job: np.ndarray, dimensions: Sequence[str]):
    """The table's statistic of ``part`` with :func:`serbench.report.calibration.jackknife`'s
    signature: ``weights`` [R, S] drop speakers, ``fold_weights`` [R, F] drop folds."""
    def statistic(weights=None, fold_weights=None):
        if weights is not None:
            return table_statistic(np.einsum("rs,sjdm->rjdm", weights, part), fold_of_job, dimensions)
        rows = 1 if fold_weights is None else len(fold_weights)
        return table_statistic(part.sum(0)[None].repeat(rows, 0), fold_of_job, dimensions, fold_weights)
    return statistic


def _entry(metric: str, estimate: float, variance: float, plan, difference: bool = False) -> dict:
    low, high = metric_bounds(metric)
    if difference:  # a difference of two values in [low, high]
        low, high = low - high, high - low
    return {"mean": estimate, "ci95": interval(estimate, variance, plan, low, None if np.isinf(high) else high)}


def by_gender(frame: pd.DataFrame, dimensions: Sequence[str], speakers_known: bool, overall: dict,
              threshold: float) -> dict | None:
    """Every dimensional metric per sex with its interval, ``F - M`` with its interval, and the
    fairness flag; None when the table knows no gender."""
    genders = gender_column(frame)
    if genders is None:
        return None
    job_index, speaker_index, fold_of_job, speakers = _axes(frame)
    names = metric_names(dimensions)
    parts = {g: sums(frame, dimensions, (genders == g).to_numpy(), job_index, speaker_index, len(speakers))
             for g in GENDERS}
    whole_part = sum(parts.values())
    whole = design(whole_part[..., 0, 0][..., None, None], fold_of_job, speakers_known)
    folds = int(fold_of_job.max()) + 1
    present = [g for g in GENDERS if parts[g][..., 0].sum() > 0]
    out: dict = {"column": "gender", "design": whole.record(), "groups": {}}
    for g in present:
        counts = parts[g][..., 0, 0][..., None, None]  # utterances per (speaker, job)
        plan = _group_design(counts, fold_of_job, whole)
        statistic = _statistic(parts[g], fold_of_job, dimensions)
        estimate = {m: float(v[0]) for m, v in statistic().items()}
        kept = counts.sum(axis=(1, 2, 3)) > 0
        kept_folds = (counts.sum(axis=(0, 2, 3)) @ np.eye(folds)[fold_of_job]) > 0
        variance = (jackknife(statistic, plan, len(speakers), folds, kept, kept_folds) if not plan.reason
                    else dict.fromkeys(names, np.nan))
        out["groups"][g] = {"utterances": int(counts.sum()), "speakers": int(kept.sum()),
                            "cluster": plan.record(),
                            **{m: _entry(m, estimate[m], variance[m], plan) for m in names}}
    if len(present) == len(GENDERS):
        female = _statistic(parts["F"], fold_of_job, dimensions)
        male = _statistic(parts["M"], fold_of_job, dimensions)

        def difference(weights=None, fold_weights=None):
            a, b = female(weights, fold_weights), male(weights, fold_weights)
            return {m: a[m] - b[m] for m in names}

        kept = whole_part[..., 0, 0].sum(1) > 0
        estimate = {m: float(v[0]) for m, v in difference().items()}
        variance = (jackknife(difference, whole, len(speakers), folds, kept) if not whole.reason
                    else dict.fromkeys(names, np.nan))
        out["difference"] = {"groups": DIFFERENCE, "cluster": whole.record(),
                             **{m: _entry(m, estimate[m], variance[m], whole, True) for m in names}}
    unknown = int((~genders.isin(GENDERS)).sum())
    if unknown:
        out["unknown_gender_utterances"] = unknown
    out["fairness"] = fairness(out["groups"], overall, dimensions, threshold)
    return out


def fairness(groups: dict, overall: dict, dimensions: Sequence[str], threshold: float) -> dict:
    """audEERING's rule per sex and dimension; ``passed`` None when fewer than two sexes are present."""
    checks = []
    if all(g in groups for g in GENDERS):
        for d in dimensions:
            metric = f"ccc_{d}"
            for g in GENDERS:
                gap = groups[g][metric]["mean"] - overall[metric]["mean"]
                checks.append({"metric": metric, "group": g, "difference_to_all": gap, "threshold": threshold,
                               "passed": abs(gap) <= threshold})
    return {"rule": FAIRNESS_RULE, "threshold": threshold, "checks": checks,
            "passed": None if not checks else all(c["passed"] for c in checks)}


def by_speaker(frame: pd.DataFrame, dimensions: Sequence[str]) -> dict:
    """Every dimensional metric per speaker (the table's statistic over the speaker's
    utterances) with its within-speaker interval (:data:`serbench.report.groups.SPEAKER_INTERVAL`),
    and the spread of each metric over speakers."""
    job_index, _, fold_of_job, _ = _axes(frame)
    utterances = sorted(set(frame["utterance_id"].astype(str)))
    utterance_index = frame["utterance_id"].astype(str).map({u: i for i, u in enumerate(utterances)}).to_numpy()
    per_utterance = sums(frame, dimensions, np.ones(len(frame), dtype=bool), job_index, utterance_index, len(utterances))
    rows_of, gender_of = speaker_rows(frame, utterances)
    names = metric_names(dimensions)
    out = {}
    for speaker in sorted(rows_of):
        part = per_utterance[rows_of[speaker]]
        jobs = part[..., 0, 0].sum(0) > 0
        folds = np.unique(fold_of_job[jobs], return_inverse=True)[1]
        part = part[:, jobs]
        estimate = table_statistic(part.sum(0)[None], folds, dimensions)
        intervals, plan = dimension_interval(part, folds, dimensions, speakers_known=False)
        out[speaker] = {"utterances": len(rows_of[speaker]),
                        "gender": gender_of.get(speaker) if gender_of.get(speaker) in GENDERS else None,
                        **{m: {"mean": float(estimate[m][0]), "ci95": intervals[m]} for m in names},
                        "reason": plan.reason}
    return {"interval": SPEAKER_INTERVAL, "speakers": out, "spread": spread(out, names)}


def summarize(frame: pd.DataFrame, dimensions: Sequence[str], speakers_known: bool, overall: dict,
              threshold: float) -> dict:
    """A dimensional result's ``groups`` section, shaped as a categorical one's."""
    return {"gender": by_gender(frame, dimensions, speakers_known, overall, threshold),
            "speaker": by_speaker(frame, dimensions) if speakers_known else None}
