"""Run directories on disk: one file per (fold, seed) job, and a summary computed from them.

Each job writes its predictions and then its metrics file, both atomically; the metrics
file's presence marks the job done, so a rerun skips it. The summary never depends on what
is in memory: it reads the job files back, and only files that are what was written: each
job record carries the sha256 of its predictions files and a checksum of itself, and
``result.json`` the sha256 of ``predictions.csv``. An edited or truncated job file is computed
again by the next run and refused by ``finish``; an edited ``predictions.csv`` is refused by
whatever reads it (compare, score).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from serbench.api.atomic import write_json, write_text
from serbench.api.errors import SerbenchError
from serbench.api.textfiles import read_json
from serbench.api.work import Job
from serbench.report import dimension_results, soft_scores
from serbench.report.metrics import METRICS
from serbench.report.rundir import RunDir
from serbench.report.stats import clip, cluster_interval, speaker_counts, summarize

SCHEMA = "serbench.result/1"
PREDICTION_COLUMNS = ["fold", "seed", "utterance_id", "speaker", "label", "prediction"]


def job_done(run_dir: Path, fold: str, seed: int) -> bool:
    """Done only when the job's files are complete and are the ones it wrote (see
    :func:`job_problem`): a truncated or edited file is redone."""
    return not job_problem(run_dir, fold, seed)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_digest(record: dict) -> str:
    """The checksum a job record carries of itself: every field but ``sha256``, as JSON reads
    it back (so a record written and read again gives the same digest)."""
    rest = json.loads(json.dumps({k: v for k, v in record.items() if k != "sha256"}))
    return sha256_of(json.dumps(rest, sort_keys=True).encode())


def job_problem(run_dir: Path, fold: str, seed: int) -> str:
    """'' when the job's record and its test and dev predictions are exactly what the job wrote
    (the record's own checksum, and the sha256 of each predictions file it recorded, agree);
    else what is wrong, naming the file: ``not done`` when there is no record yet."""
    where, job = RunDir(run_dir), Job(fold, seed)
    metrics_file, predictions_file = where.job_record(job), where.job_predictions(job)
    try:
        text = metrics_file.read_bytes()
    except FileNotFoundError:
        return "not done"
    except OSError as exc:
        return f"{metrics_file}: unreadable ({exc.strerror})"
    try:
        record = json.loads(text)
    except ValueError:
        return f"{metrics_file}: not a job record (not JSON: truncated or overwritten)"
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict) or "sha256" not in record:
        return f"{metrics_file}: not a job record with checksums (written by an older serbench, or edited)"
    if record["sha256"] != record_digest(record):
        return f"{metrics_file}: edited since its job wrote it (its checksum differs)"
    if (str(record.get("fold")), record.get("seed")) != (str(fold), seed):
        return f"{metrics_file}: holds fold {record.get('fold')} seed {record.get('seed')}, not fold {fold} seed {seed}"
    for path, key in ((predictions_file, "predictions"), (where.job_dev(job), "dev")):
        try:
            data = path.read_bytes()
        except OSError:
            return f"{path}: missing (its job's record {metrics_file.name} lists it)"
        if sha256_of(data) != record["files"].get(key):
            return f"{path}: edited since its job wrote it (its sha256 differs from the one in {metrics_file.name})"
    return ""


def write_job(run_dir: Path, record: dict, predictions: pd.DataFrame, dev: pd.DataFrame) -> None:
    """The job's dev and test predictions, then its record with their sha256 and its own
    checksum: the record is written last, so its presence marks the job done."""
    where, job = RunDir(run_dir), Job(record["fold"], record["seed"])
    dev_text = dev.to_csv(index=False, float_format="%.6f")
    test_text = predictions.to_csv(index=False, float_format="%.6f")
    write_text(where.job_dev(job), dev_text)
    write_text(where.job_predictions(job), test_text)
    sealed = {**record, "files": {"predictions": sha256_of(test_text.encode("utf-8")),
                                  "dev": sha256_of(dev_text.encode("utf-8"))}}
    write_json(where.job_record(job), {**sealed, "sha256": record_digest(sealed)})


def check_jobs(run_dir: Path, jobs: list[Job]) -> None:
    """Refuse, naming the file, when a job's files are not the ones it wrote: a summary is
    never made from an edited or truncated file."""
    for fold, seed in jobs:
        problem = job_problem(run_dir, fold, seed)
        if problem == "not done":
            problem = f"{RunDir(run_dir).job_record(Job(fold, seed))}: missing (fold {fold} seed {seed} is not done)"
        if problem:
            raise SerbenchError(f"{problem}; rerun the run (serbench run, or serbench job) to compute that job again")


def read_records(run_dir: Path, jobs: list[Job]) -> list[dict]:
    """The metrics records of ``jobs`` (each job's ``.json``), each checked against its checksums."""
    check_jobs(run_dir, jobs)
    return [json.loads(RunDir(run_dir).job_record(job).read_text()) for job in jobs]


def read_jobs(run_dir: Path, jobs: list[Job]) -> tuple[list[dict], pd.DataFrame]:
    records = read_records(run_dir, jobs)
    frames = [pd.read_csv(RunDir(run_dir).job_predictions(job), dtype={"fold": str, "speaker": str, "utterance_id": str})
              for job in jobs]
    return records, pd.concat(frames, ignore_index=True)


def read_run_predictions(result: Result) -> pd.DataFrame:
    """A finished run's ``predictions.csv``, refused (naming it) when it is not the file
    ``finish`` wrote: its sha256 differs from the one in ``result.json`` or, for a result that
    predates it, its rows or classes disagree with the result's folds."""
    path = result.dir.predictions
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SerbenchError(f"{result.run_dir}: no predictions.csv (an unfinished run: serbench finish it first)") from None
    recorded = result.data.get("predictions_sha256")
    fix = f"rerun serbench finish {result.run_dir} to write it again from the job files"
    if recorded is not None and sha256_of(data) != recorded:
        raise SerbenchError(f"{path}: edited since serbench wrote it (its sha256 differs from the one in result.json); {fix}")
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype={"fold": str, "speaker": str, "utterance_id": str})
    except (ValueError, UnicodeDecodeError) as exc:
        raise SerbenchError(f"{path}: not a predictions table ({str(exc).splitlines()[0]}); {fix}") from None
    missing = [c for c in PREDICTION_COLUMNS[:5] + dimension_results.prediction_columns(result.data)
               if c not in frame.columns]
    if missing:
        raise SerbenchError(f"{path}: no {missing[0]!r} column; {fix}")
    expected = sum(int(f.get("n_test", -1)) for f in result.data.get("folds", []) if isinstance(f, dict))
    if len(frame) != expected:
        raise SerbenchError(f"{path}: {len(frame)} rows, but result.json's folds hold {expected} test predictions; {fix}")
    classes = set(map(str, result.data.get("classes") or []))
    predicted = set() if dimension_results.is_dimensional(result.data) else set(frame["prediction"].astype(str))
    strangers = sorted((set(frame["label"].astype(str)) | predicted) - classes)
    if classes and strangers:
        raise SerbenchError(f"{path}: class {strangers[0]!r} is not one of result.json's classes; {fix}")
    return frame


@dataclass
class SpeakerCounts:
    """A run's test predictions as confusion counts ``[S, J, K, K]`` per speaker and (fold,
    seed) job: what the speaker bootstrap and the paired tests resample."""

    counts: np.ndarray
    speakers: list[str]
    jobs: list[tuple[str, int]]
    fold_of_job: np.ndarray


def speaker_table(predictions: pd.DataFrame, classes: list[str]) -> SpeakerCounts:
    index = {c: k for k, c in enumerate(classes)}
    jobs = list(dict.fromkeys(zip(predictions["fold"].astype(str), predictions["seed"].astype(int))))  # run order
    folds = list(dict.fromkeys(f for f, _ in jobs))
    speakers = sorted(set(predictions["speaker"].astype(str)))
    job_index = {job: j for j, job in enumerate(jobs)}
    speaker_index = {name: i for i, name in enumerate(speakers)}
    counts = speaker_counts(
        np.array([job_index[(str(f), int(s))] for f, s in zip(predictions["fold"], predictions["seed"])]),
        predictions["speaker"].astype(str).map(speaker_index).to_numpy(),
        predictions["label"].map(index).to_numpy(), predictions["prediction"].map(index).to_numpy(),
        len(speakers), len(jobs), len(classes))
    return SpeakerCounts(counts, speakers, jobs, np.array([folds.index(f) for f, _ in jobs]))


def summarize_run(
    records: list[dict], predictions: pd.DataFrame, classes: list[str], speakers_known: bool = True,
) -> dict:
    """Per metric: mean / std / Student-t ci95 over folds (each fold averaged over seeds), and
    the cluster interval of the same mean (:func:`serbench.report.stats.cluster_interval`: the
    resampled level, its number of clusters, and the reason when there is no interval), both
    clipped to [0, 1], with the number of speakers."""
    table = speaker_table(predictions, classes)
    intervals, plan = cluster_interval(table.counts, table.fold_of_job, speakers_known)
    by_fold: dict[str, list[dict]] = {}
    for record in records:
        by_fold.setdefault(record["fold"], []).append(record["metrics"])
    summary = {}
    for metric in METRICS:
        per_fold = [float(np.mean([m[metric] for m in ms])) for ms in by_fold.values()]
        entry = summarize(per_fold)
        summary[metric] = {**entry, "ci95": clip(entry["ci95"]), "ci95_bootstrap": intervals[metric],
                           "speakers": len(table.speakers) if speakers_known else None,
                           "cluster": plan.record()}
    return summary


@dataclass
class Result:
    """A finished run: the ``result.json`` content and where it lives."""

    data: dict
    run_dir: Path

    @property
    def summary(self) -> dict:
        return self.data["summary"]

    @property
    def run_id(self) -> str:
        return self.data["run_id"]

    @property
    def dir(self) -> RunDir:
        """Where its files are (:class:`RunDir`)."""
        return RunDir(self.run_dir)


FOLD_FIELDS = ("fold", "seed", "n_train", "n_dev", "n_test", "metrics", "best_epoch")


def finish(run_dir: Path, jobs: list[Job], classes: list[str], main_metric: str, speakers_known: bool = True,
           report: dict | None = None, dimensions: Sequence[str] = (), **fields) -> Result:
    """Read the run's job files back, summarise them and write ``result.json`` (schema
    ``serbench.result/1``) and ``predictions.csv``. ``fields`` are the run's own entries:
    ``config``, ``plugins``, ``environment``, ``timing``, ... . ``speakers_known`` False: the
    predictions' speaker column holds pseudo-speakers (one per utterance), so speaker-level
    intervals are labelled utterance-level. ``report``: the ``-o report.*`` settings
    (:mod:`serbench.report.report_options`) for the ``groups`` and ``calibration`` sections.
    ``dimensions`` (``--task dimensional``): the result summarises CCC, Pearson r and MAE per
    dimension instead (:mod:`serbench.report.dimension_results`)."""
    from serbench.api.version import __version__
    from serbench.report.beyond import score_beyond

    records, predictions = read_jobs(run_dir, jobs)
    history = []  # each earlier invocation's timing and cache figures, kept rather than overwritten
    if RunDir(run_dir).result.exists():
        try:
            before = json.loads(RunDir(run_dir).result.read_text())
            history = before.get("history", []) + [{k: before.get(k) for k in ("created", "timing", "cache")}]
        except json.JSONDecodeError:
            pass
    data = {
        "schema": SCHEMA,
        "serbench_version": __version__,
        "run_id": run_dir.name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **fields,
        "classes": classes,
        "main_metric": main_metric,
        "folds": [{k: r[k] for k in FOLD_FIELDS} for r in records],
        "summary": None,
        "overall": None,
        "history": history,
        **soft_scores.summary(records),  # soft_labels: EMO-SUPERB's metric when the test splits have rater labels
    }
    if dimensions:  # task, dimensions, metric names, main metric, summary and overall of a regression
        data.update(dimension_results.fields(records, predictions, dimensions, speakers_known))
        data["groups"] = dimension_results.groups(predictions, dimensions, speakers_known, data["summary"], report)
    else:
        data["summary"] = summarize_run(records, predictions, classes, speakers_known=speakers_known)
        data["overall"] = overall(predictions, classes)
        data.update(score_beyond(predictions, classes, speakers_known, data["summary"], report,
                                 lambda fold, seed: RunDir(run_dir).job_dev(Job(fold, seed)), str(run_dir)))
    data["timing"] = {**data.get("timing", {}), "train_s": round(sum(r["train_s"] for r in records), 3)}
    return write_result(run_dir, data, predictions)


def overall(predictions: pd.DataFrame, classes: list[str]) -> dict:
    """Per-class recall, F1 and support and the confusion matrix over the test predictions of
    every (fold, seed) job together (an utterance counts once per seed), with labelled axes."""
    from serbench.report.metrics import score

    index = {c: k for k, c in enumerate(classes)}
    scored = score(predictions["label"].map(index).to_numpy(), predictions["prediction"].map(index).to_numpy(), classes)
    return {"over": "every (fold, seed) job's test predictions together",
            "per_class": scored["per_class"],
            "confusion": {"rows": "reference label", "columns": "predicted label", "labels": list(classes),
                          "counts": scored["confusion"]}}


def write_result(run_dir: Path, data: dict, predictions: pd.DataFrame) -> Result:
    """``predictions.csv``, then ``result.json`` holding its sha256 (what
    :func:`read_run_predictions` checks before anything is computed from it)."""
    text = predictions.to_csv(index=False, float_format="%.6f")
    write_text(RunDir(run_dir).predictions, text)
    data = {**data, "predictions_sha256": sha256_of(text.encode("utf-8"))}
    write_json(RunDir(run_dir).result, data)
    return Result(data, run_dir)


def load_runs(paths: Sequence[str | Path], command: str) -> list[Result]:
    """The results of two or more distinct runs (``command`` names who asks): a run given twice
    would be compared with, or fused with, itself."""
    results = [load_result(p) for p in paths]
    if len(results) < 2:
        raise SerbenchError(f"serbench {command}: give at least two run directories")
    seen: dict[Path, str] = {}
    for path, result in zip(paths, results):
        where = result.run_dir.resolve()
        if where in seen:
            raise SerbenchError(f"serbench {command}: {path} is the same run as {seen[where]} (given twice)")
        seen[where] = str(path)
    return results


def load_result(path: str | Path) -> Result:
    """A ``result.json`` or a run directory holding one; bad input names the file."""
    path = Path(path)
    file = RunDir(path).result if path.is_dir() else path
    if not file.exists():
        raise SerbenchError(f"{file}: no such result file (expected result.json or a run directory)")
    if not file.is_file() and not file.is_dir():  # a FIFO or device would be read forever
        raise SerbenchError(f"{file}: not a regular file (expected result.json or a run directory)")
    data = read_json(file)
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise SerbenchError(f"{file}: not a serbench result (schema {found!r}, expected {SCHEMA!r})")
    problem = _result_problem(data)
    if problem:
        raise SerbenchError(f"{file}: {problem} (a damaged or hand-edited result; rerun serbench finish on its run)")
    return Result(data, file.parent)


def _result_problem(data: dict) -> str:
    """What a table would print wrongly from this result ('' when nothing): a missing part, a
    score that is not a proportion, an interval that is not two numbers."""
    config = data.get("config")
    if not isinstance(config, dict):
        return "no config"
    for key in ("protocol", "upstream", "downstream"):
        if not isinstance(config.get(key), str):
            return f"config.{key} missing"
    if "pooling" not in config:  # None for a fusion of runs
        return "config.pooling missing"
    if not isinstance(config.get("seeds"), list):
        return "config.seeds missing" if "seeds" not in config else f"config.seeds is {config['seeds']!r:.60}, not a list of seeds"
    summary = data.get("summary")
    if not isinstance(summary, dict):
        return "no summary"
    if dimension_results.dimensions_problem(data):
        return dimension_results.dimensions_problem(data)
    for metric in dimension_results.result_metrics(data):
        entry = summary.get(metric)
        if not isinstance(entry, dict):
            return f"summary.{metric} missing" if entry is None else f"summary.{metric} is {entry!r:.60}, not a mapping"
        mean = entry.get("mean")
        if dimension_results.value_problem(metric, mean):  # NaN fails both comparisons
            return f"summary.{metric}.mean is {dimension_results.value_problem(metric, mean)}"
        for interval in ("ci95", "ci95_bootstrap"):
            bounds = entry.get(interval)
            if bounds is not None and (not isinstance(bounds, list) or len(bounds) != 2
                                       or not all(isinstance(b, (int, float)) and math.isfinite(b) for b in bounds)):
                return f"summary.{metric}.{interval} is {bounds!r}, not two finite numbers"
    from serbench.report.result_fields import fields_problem  # run id, folds, plugins...: what tables and figures read

    return fields_problem(data)


METRIC_DEFINITIONS = "serbench.metrics/1"  # UA, WA, macro-F1 as serbench.report.metrics defines them; bump on a change
COMPARABILITY_PARTS = ("protocol", "corpus", "classes", "test_split", "metrics")
TASK_DEFAULT = "categorical"  # a key's ``task`` part, recorded only for another task (categorical keys are as before)
PRECISION_DEFAULT = "fp32"  # a key's ``precision`` part, recorded only for another extraction precision
CORPUS_UNKNOWN = "unknown"  # a result written before results recorded their corpus digest


def comparability(protocol: str, corpus: str, classes: Sequence[str], test_split: str | None,
                  metrics: str = METRIC_DEFINITIONS, corpora: Sequence[str] = (), task: str = TASK_DEFAULT,
                  precision: str = "") -> dict:
    """What two results must share before one is ranked above the other, marked "≈ best" beside
    it or tested against it: the protocol's name alone is not enough (two CSV files, two EmoBox
    datasets, two class sets or two MSP-Podcast test sets read by one protocol are different
    tasks). ``corpus`` is :meth:`serbench.api.protocol.Protocol.digest`; ``key`` a short hash of
    every part, for grouping and for naming a group's files. ``corpora`` (a cross-corpus run's
    training and test corpora, :attr:`serbench.api.protocol.Protocol.corpora`) and ``task``
    (``dimensional: arousal, valence``; only when it is not the categorical default) are parts
    only when given, so every other result keeps the key it had. So is ``precision``, the frozen
    encoder's extraction precision (``-o upstream.precision``), recorded only when it is not
    fp32 (features extracted in bf16 are other features): fp32 results keep their keys."""
    parts = {"protocol": protocol, "corpus": corpus, "classes": list(classes), "test_split": test_split,
             "metrics": metrics} | ({"task": task} if task != TASK_DEFAULT else {})
    if corpora:
        parts["corpora"] = list(corpora)
    if precision and precision != PRECISION_DEFAULT:
        parts["precision"] = precision
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:10]
    return {**parts, "key": key}


def comparability_of(result: Result) -> dict:
    """A result's comparability record, its key recomputed from the parts (the key names files
    and HTML anchors: a hand-edited key is never trusted). A result written before the record
    existed gets one from its protocol, its protocol parameters and its classes, with the corpus
    marked unknown: such results group only with each other, never with a measured digest."""
    recorded = result.data.get("comparability")
    where = result.dir.result
    if recorded is None:
        config = result.data["config"]
        params = (config.get("params") or {}).get("protocol") or {}
        shown = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
        return comparability(config["protocol"], CORPUS_UNKNOWN + (f" ({shown})" if shown else ""),
                             result.data.get("classes") or [], None)
    if not isinstance(recorded, dict) or any(k not in recorded for k in COMPARABILITY_PARTS):
        raise SerbenchError(f"{where}: comparability must hold {', '.join(COMPARABILITY_PARTS)} (a damaged or "
                            "hand-edited result; rerun serbench finish on its run)")
    classes, split = recorded["classes"], recorded["test_split"]
    if (not all(isinstance(recorded[k], str) for k in ("protocol", "corpus", "metrics"))
            or not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)
            or not (split is None or isinstance(split, str))):
        raise SerbenchError(f"{where}: comparability {recorded!r}: protocol, corpus and metrics must be text, "
                            "classes a list of names, test_split text or null (rerun serbench finish on its run)")
    corpora = recorded.get("corpora") or []
    if not isinstance(corpora, list) or not all(isinstance(c, str) for c in corpora):
        raise SerbenchError(f"{where}: comparability corpora {corpora!r:.60} is not a list of corpus names (rerun "
                            "serbench finish on its run)")
    task = recorded.get("task", TASK_DEFAULT)
    if not isinstance(task, str):
        raise SerbenchError(f"{where}: comparability task {task!r} is not text (rerun serbench finish on its run)")
    precision = recorded.get("precision", PRECISION_DEFAULT)
    if not isinstance(precision, str):
        raise SerbenchError(f"{where}: comparability precision {precision!r} is not text (rerun serbench finish on its run)")
    return comparability(recorded["protocol"], recorded["corpus"], classes, split, recorded["metrics"], corpora, task,
                         precision)


def comparability_difference(a: dict, b: dict, ignore: Sequence[str] = ()) -> str:
    """The first part two comparability records differ in, as ``part: A vs B`` ('' when the
    keys agree, or differ only in the parts named in ``ignore``); an unknown corpus says how to
    record it."""
    for part in ("task", *COMPARABILITY_PARTS, "corpora", "precision"):
        if part in ignore:
            continue
        if part in ("task", "precision"):
            default = TASK_DEFAULT if part == "task" else PRECISION_DEFAULT
            if a.get(part, default) != b.get(part, default):
                what = " (extraction precision, -o upstream.precision)" if part == "precision" else ""
                return f"{part} {a.get(part, default)} vs {b.get(part, default)}{what}"
            continue
        if a.get(part) != b.get(part):
            hint = ("; a result written before serbench recorded corpus digests: rerun serbench finish on it"
                    if part == "corpus" and (str(a.get(part)).startswith(CORPUS_UNKNOWN)
                                             or str(b.get(part)).startswith(CORPUS_UNKNOWN)) else "")
            what = " (utterances, labels, speakers or folds differ)" if part == "corpus" else ""
            return f"{part} {a.get(part)} vs {b.get(part)}{what}{hint}"
    return ""
