"""Test-time robustness: each job's trained model scored on perturbed copies of its test set,
and the result's ``robustness`` section computed from those predictions.

Per condition (``--perturb NAME:k=v``) the section holds the metrics (summarised as the clean
ones are), the paired difference to clean (perturbed minus clean, per metric: the mean over
folds with its Student-t interval over folds, and the cluster interval of
:mod:`serbench.report.stats` at the same level as the clean summary's, computed on the difference of
the two statistics, so the pairing cancels what both share), the share of predictions left
unchanged by the perturbation, and audEERING's robustness rule as a flag: the UAR (UA) may drop
by at most ``robustness.max_drop`` (0.05) and at least ``robustness.min_unchanged`` (50%) of the
predictions must stay the same (audEERING's SER model tests, robustness tests:
https://audeering.github.io/ser-tests/method-tests.html; Derington et al. 2023, "Testing
correctness, fairness, and robustness of speech emotion recognition models", arXiv:2312.06270).

Every job writes ``folds/<job>.perturbed.csv`` (:mod:`serbench.run.robustness_eval`; its record keeps
the file's sha256); the run's
``predictions_perturbed.csv``, beside ``predictions.csv``, holds them all with a ``condition``
column, and its sha256 is in the section.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from serbench.api.atomic import write_text
from serbench.api.errors import SerbenchError
from serbench.api.specs import Param
from serbench.api.work import Job
from serbench.report.metrics import METRICS
from serbench.report.results import read_jobs, sha256_of, summarize_run
from serbench.report.rundir import RunDir
from serbench.report.stats import design, fold_statistic, summarize

ROBUSTNESS_PARAMS = (
    Param("max_drop", float, 0.05, "robustness rule: largest UA (UAR) drop from clean that passes", bounds="[0, 1]"),
    Param("min_unchanged", float, 0.5, "robustness rule: smallest share of predictions unchanged from clean that "
          "passes", bounds="[0, 1]"),
)
RULE = ("audEERING SER model tests, robustness: UAR drop <= max_drop and unchanged predictions >= min_unchanged "
        "(https://audeering.github.io/ser-tests/method-tests.html; Derington et al. 2023, arXiv:2312.06270)")


def _read_job_frames(run_dir: Path, records: list[dict]) -> pd.DataFrame:
    frames = []
    for record in records:
        path = RunDir(run_dir).job_perturbed(Job(record["fold"], record["seed"]))
        entry = record.get("robustness")
        if not isinstance(entry, dict):
            raise SerbenchError(f"{RunDir(run_dir).folds}: the job record of fold {record['fold']} seed {record['seed']} "
                                "has no robustness entry (run without --perturb?); rerun the run")
        try:
            data = path.read_bytes()
        except OSError:
            raise SerbenchError(f"{path}: missing (its job's record lists it); rerun the run") from None
        if sha256_of(data) != entry.get("sha256"):
            raise SerbenchError(f"{path}: edited since its job wrote it (its sha256 differs from its job record's)")
        frames.append(pd.read_csv(io.BytesIO(data), dtype={"fold": str, "speaker": str, "utterance_id": str}))
    return pd.concat(frames, ignore_index=True)


def unchanged_share(clean: pd.DataFrame, perturbed: pd.DataFrame) -> float:
    """Share of (fold, seed, utterance) test predictions whose class is the clean one."""
    keys = ["fold", "seed", "utterance_id"]
    merged = clean[keys + ["prediction"]].merge(perturbed[keys + ["prediction"]], on=keys, suffixes=("", "_p"),
                                                validate="one_to_one")
    if len(merged) != len(clean):
        raise SerbenchError(f"perturbed predictions cover {len(merged)} of {len(clean)} clean test predictions")
    return float((merged["prediction"].astype(str) == merged["prediction_p"].astype(str)).mean())


def _replicates(counts: np.ndarray, fold_of_job: np.ndarray, level: str) -> tuple[dict[str, np.ndarray], int]:
    """Delete-one-cluster replicates of the table's statistic (as :mod:`serbench.report.stats` forms them)."""
    if level == "fold":
        drop = 1.0 - np.eye(int(np.asarray(fold_of_job).max()) + 1)
        return fold_statistic(counts, fold_of_job, fold_weights=drop), len(drop)
    drop = 1.0 - np.eye(counts.shape[0])  # every speaker row: both runs test the same speakers
    return fold_statistic(counts, fold_of_job, weights=drop), len(drop)


def paired_cluster_interval(clean: np.ndarray, perturbed: np.ndarray, fold_of_job: np.ndarray,
                            speakers_known: bool = True) -> tuple[dict[str, list[float] | None], dict]:
    """95% interval of (perturbed - clean) of the table's statistic per metric: the delete-one-
    cluster jackknife of the difference at the clean design's level (:func:`serbench.report.stats.design`),
    estimate ± t(df) x SE; None per metric when the design has too few clusters."""
    plan = design(clean, fold_of_job, speakers_known)
    if plan.reason:
        return dict.fromkeys(METRICS), plan.record()
    levels = ["fold", "speaker"] if "x" in plan.unit else ["fold" if plan.unit == "fold" else "speaker"]
    variance = dict.fromkeys(METRICS, 0.0)
    for level in levels:
        (a, g), (b, _) = _replicates(clean, fold_of_job, level), _replicates(perturbed, fold_of_job, level)
        for m in METRICS:
            d = b[m] - a[m]
            variance[m] += float((g - 1) / g * ((d - d.mean()) ** 2).sum())
    estimate_a, estimate_b = fold_statistic(clean, fold_of_job), fold_statistic(perturbed, fold_of_job)
    t = float(scipy_stats.t.ppf(0.975, plan.df))
    out = {}
    for m in METRICS:
        centre, half = float(estimate_b[m][0] - estimate_a[m][0]), t * float(np.sqrt(variance[m]))
        out[m] = [max(-1.0, centre - half), min(1.0, centre + half)]
    return out, plan.record()


def _per_fold(records: list[dict]) -> dict[str, dict[str, float]]:
    """Per metric, each fold's mean over its seeds (the table's per-fold values)."""
    by_fold: dict[str, list[dict]] = {}
    for record in records:
        by_fold.setdefault(str(record["fold"]), []).append(record["metrics"])
    return {m: {fold: float(np.mean([x[m] for x in ms])) for fold, ms in by_fold.items()} for m in METRICS}


def section(run_dir: Path, jobs: list[Job], classes: list[str], speakers_known: bool, config: dict) -> dict:
    """The result's ``robustness`` section (see the module docstring); writes ``predictions_perturbed.csv``."""
    records, clean = read_jobs(run_dir, jobs)
    perturbed = _read_job_frames(run_dir, records)
    text = perturbed.to_csv(index=False, float_format="%.6f")
    write_text(RunDir(run_dir).predictions_perturbed, text)
    thresholds = config.get("robustness") or {p.name: p.default for p in ROBUSTNESS_PARAMS}
    out = {}
    for entry in config["perturb"]:
        key = entry["key"]
        rows = paired_rows(clean, perturbed[perturbed["condition"] == key].drop(columns="condition"))
        condition_records = [{"fold": r["fold"], "metrics": r["robustness"]["conditions"][key]} for r in records]
        out[key] = {"perturbation": entry,
                    **condition(clean, records, rows, condition_records, classes, speakers_known, thresholds)}
    return {"conditions": out, "rule": RULE, "predictions": RunDir(run_dir).predictions_perturbed.name,
            "predictions_sha256": sha256_of(text.encode("utf-8"))}


def paired_rows(clean: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (one condition's predictions) in the order of ``clean``'s, with its columns."""
    return rows.set_index(["fold", "seed", "utterance_id"]).loc[
        pd.MultiIndex.from_frame(clean[["fold", "seed", "utterance_id"]])].reset_index()[list(clean.columns)]


def condition(clean: pd.DataFrame, clean_records: list[dict], rows: pd.DataFrame, records: list[dict],
              classes: list[str], speakers_known: bool, thresholds: dict) -> dict:
    """One condition's entry from its predictions ``rows`` (paired with ``clean`` row by row) and
    the per-job metrics of both (``records``: ``fold`` and ``metrics``): summary, difference to
    clean, unchanged share and the robustness rule. ``serbench score --clean`` computes the same."""
    from serbench.report.results import speaker_table

    clean_table, table = speaker_table(clean, classes), speaker_table(rows, classes)
    if table.speakers != clean_table.speakers or table.jobs != clean_table.jobs:
        raise SerbenchError("a condition's predictions do not pair with the clean predictions (other speakers or jobs)")
    summary = summarize_run(records, rows, classes, speakers_known)
    intervals, cluster = paired_cluster_interval(clean_table.counts, table.counts, clean_table.fold_of_job, speakers_known)
    clean_folds, perturbed_folds = _per_fold(clean_records), _per_fold(records)
    difference = {}
    for m in METRICS:
        entry = summarize([perturbed_folds[m][fold] - value for fold, value in clean_folds[m].items()])
        difference[m] = {**entry, "ci95_bootstrap": intervals[m], "cluster": cluster}
    unchanged = unchanged_share(clean, rows)
    drop = -difference["ua"]["mean"]
    passed = drop <= thresholds["max_drop"] + 1e-12 and unchanged >= thresholds["min_unchanged"]
    return {"summary": summary, "difference": difference, "unchanged": unchanged,
            "rule": {"drop_ua": drop, "max_drop": thresholds["max_drop"], "unchanged": unchanged,
                     "min_unchanged": thresholds["min_unchanged"], "passed": bool(passed)}}
