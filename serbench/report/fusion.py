"""``serbench fuse``: late fusion of several runs with per-class weights fitted on dev.

Dimensional runs (``--task dimensional``) are fused by :mod:`serbench.report.dimension_fusion`:
a weighted mean of their predicted values, per dimension, weights fitted on dev CCC.

For each (fold, seed) job the runs share, a weight matrix W (models x classes) is fitted on
the dev probabilities by COBYLA (scipy) to maximise the protocol's main metric of
argmax_c sum_m W[m, c] p_m(c); test is then scored once with that W. Constraint: each class's
weights over models are non-negative and sum to 1. (Diatlova et al. 2024 state that rows and
columns sum to 1; with five models and eight classes both cannot hold, so serbench keeps the
column constraint, which makes every class score a convex mix of the models' scores.) The
metric is piecewise constant, so the optimiser starts from uniform weights and the result is
never worse on dev than the best single run: if COBYLA ends below it, that run's one-hot
weights are kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from serbench.api.errors import SerbenchError
from serbench.api.work import Job
from serbench.report import locks
from serbench.report.dimension_results import dimensions_of, is_dimensional
from serbench.report.fused_run import finish_fused
from serbench.report.metrics import METRICS, confusion, from_confusion, score
from serbench.report.results import (
    Result,
    check_jobs,
    comparability_difference,
    comparability_of,
    load_runs,
    write_job,
)


def _score(probs: np.ndarray, weights: np.ndarray, labels: np.ndarray, metric: str) -> float:
    fused = np.einsum("mnc,mc->nc", probs, weights)
    return float(from_confusion(confusion(labels, fused.argmax(1), probs.shape[2]))[metric])


def fit_weights(dev_probs: np.ndarray, labels: np.ndarray, metric: str, max_iter: int = 400) -> np.ndarray:
    """W [models, classes] with W >= 0 and every column summing to 1."""
    models, _, classes = dev_probs.shape
    start = np.full((models, classes), 1.0 / models)

    def objective(flat):
        return -_score(dev_probs, np.clip(flat.reshape(models, classes), 0, None), labels, metric)

    constraints = [{"type": "ineq", "fun": lambda w: w}]
    for c in range(classes):
        column = np.zeros((models, classes))
        column[:, c] = 1
        column = column.ravel()
        constraints += [{"type": "ineq", "fun": lambda w, v=column: v @ w - 1 + 1e-9},
                        {"type": "ineq", "fun": lambda w, v=column: 1 + 1e-9 - v @ w}]
    found = minimize(objective, start.ravel(), method="COBYLA", constraints=constraints,
                     options={"maxiter": max_iter, "rhobeg": 0.3})
    weights = np.clip(found.x.reshape(models, classes), 0, None)
    weights /= weights.sum(0, keepdims=True).clip(min=1e-12)
    candidates = [weights, start] + [np.eye(models)[[m] * classes].T.copy() for m in range(models)]
    return max(candidates, key=lambda w: _score(dev_probs, w, labels, metric))


def fuse(run_dirs: list[str | Path], out: str | Path) -> Result:
    runs = load_runs(run_dirs, "fuse")
    first = runs[0].data
    key = comparability_of(runs[0])
    for r in runs:
        if ((r.data["config"].get("params") or {}).get("train") or {}).get("select_split") == "none":
            raise SerbenchError(f"serbench fuse: {r.run_dir} was trained with train.select_split=none (no dev split): "
                                "fusion fits its weights on dev predictions; fuse runs that kept a dev split")
    for r in runs[1:]:
        if r.data["config"]["protocol"] != first["config"]["protocol"] or r.data["classes"] != first["classes"]:
            raise SerbenchError(f"{r.run_dir}: protocol or classes differ from {runs[0].run_dir}; fusion needs the same task")
        differs = comparability_difference(key, comparability_of(r))
        if differs:
            raise SerbenchError(f"serbench fuse: {runs[0].run_dir} and {r.run_dir} are not comparable: {differs}; "
                                "fusion needs one comparability key")
    classes, metric = first["classes"], first.get("main_metric", "ua")
    jobs = sorted(set.intersection(*({Job(str(f["fold"]), int(f["seed"])) for f in r.data["folds"]} for r in runs)))
    if not jobs:
        raise SerbenchError("serbench fuse: the runs share no (fold, seed) job")
    left_out = {r.run_id: [f"fold {f['fold']} seed {f['seed']}" for f in r.data["folds"]
                           if Job(str(f["fold"]), int(f["seed"])) not in set(jobs)] for r in runs}
    left_out = {run: dropped for run, dropped in left_out.items() if dropped}
    out = Path(out)
    _refuse_if_taken(out)  # before the lock: a refused fuse leaves nothing in a folder it may not use
    if is_dimensional(first):  # one comparability key: every run regresses the same dimensions
        from serbench.report import dimension_fusion

        dimensions = dimensions_of(first)
        sources = dimension_fusion.read_sources(runs, jobs, dimensions)
        with locks.exclusive(out / LOCK):
            _refuse_if_taken(out)
            return dimension_fusion.write(runs, jobs, sources, dimensions, classes, key, left_out, out)
    sources = _read_sources(runs, jobs, classes)  # every input read and checked before anything is written
    with locks.exclusive(out / LOCK):  # a second fuse into --out waits here, then finds it taken
        _refuse_if_taken(out)
        return _write_fused(runs, jobs, sources, classes, metric, key, left_out, out)


LOCK = ".fuse.lock"  # inside --out: held while a fuse writes there (serbench.report.locks)


def _refuse_if_taken(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise SerbenchError(f"serbench fuse --out {out}: is a file, expected a new folder")
    if out.exists() and any(not p.name.startswith(LOCK) for p in out.iterdir()):
        raise SerbenchError(f"serbench fuse --out {out}: already exists and is not empty (a run directory would be "
                            "overwritten, or another fuse wrote there); give a new folder")


def _read_sources(runs: list[Result], jobs: list[Job], classes: list[str]) -> dict[Job, tuple[list, list]]:
    """Each job's dev and test predictions of every run, indexed by utterance id; refused,
    naming the file, when a job file is not the one its run wrote or the runs' splits differ."""
    for r in runs:
        check_jobs(r.run_dir, jobs)
    sources = {}
    for job in jobs:
        fold = job.fold
        dev, test = [], []
        for r in runs:
            path = r.dir.job_dev(job)
            if not path.exists():
                raise SerbenchError(f"{path}: missing (runs made before dev predictions were kept cannot be fused)")
            dev.append(pd.read_csv(path, dtype={"fold": str, "speaker": str, "utterance_id": str}).set_index("utterance_id"))
            test.append(pd.read_csv(r.dir.job_predictions(job), dtype={"fold": str, "speaker": str, "utterance_id": str}).set_index("utterance_id"))
        for frame, ids in [(d, dev[0].index) for d in dev] + [(t, test[0].index) for t in test]:
            if set(frame.index) != set(ids):
                raise SerbenchError(f"fold {fold}: the runs' dev or test utterances differ; fusion needs the same splits")
        missing = [c for c in (f"prob_{c}" for c in classes) if c not in dev[0].columns]
        if missing:
            raise SerbenchError(f"{runs[0].dir.job_dev(job)}: no {missing[0]} column")
        sources[job] = (dev, test)
    return sources


def _write_fused(runs: list[Result], jobs: list[Job], sources: dict, classes: list[str], metric: str, key: dict,
                 left_out: dict, out: Path) -> Result:
    first = runs[0].data
    index = {c: k for k, c in enumerate(classes)}
    columns = [f"prob_{c}" for c in classes]
    weights_by_job = {}
    for job in jobs:
        fold, seed = job
        dev, test = sources[job]
        dev_ids, test_ids = dev[0].index, test[0].index
        dev_probs = np.stack([d.loc[dev_ids, columns].to_numpy() for d in dev])
        test_probs = np.stack([t.loc[test_ids, columns].to_numpy() for t in test])
        labels = dev[0].loc[dev_ids, "label"].map(index).to_numpy()
        weights = fit_weights(dev_probs, labels, metric)
        weights_by_job[job.key] = weights.round(6).tolist()
        fused_test = np.einsum("mnc,mc->nc", test_probs, weights)
        fused_dev = np.einsum("mnc,mc->nc", dev_probs, weights)
        fused_test /= fused_test.sum(1, keepdims=True)
        fused_dev /= fused_dev.sum(1, keepdims=True)
        frames = []
        for ids, probs, source in ((test_ids, fused_test, test[0]), (dev_ids, fused_dev, dev[0])):
            gender = ["gender"] if "gender" in source.columns else []  # per-gender scores (serbench.report.groups)
            frame = source.loc[ids, ["fold", "seed", "speaker", *gender, "label"]].reset_index()
            frame = frame[["fold", "seed", "utterance_id", "speaker", *gender, "label"]]
            frame.insert(5 + len(gender), "prediction", [classes[k] for k in probs.argmax(1)])
            for k, c in enumerate(classes):
                frame[f"prob_{c}"] = probs[:, k]
            frames.append(frame)
        y_true = frames[0]["label"].map(index).to_numpy()
        metrics = score(y_true, fused_test.argmax(1), classes)
        source = next(f for f in first["folds"] if (f["fold"], f["seed"]) == (fold, seed))
        record = {"fold": fold, "seed": seed, "n_train": source["n_train"], "n_dev": len(dev_ids),
                  "n_test": len(test_ids), "metrics": {m: metrics[m] for m in METRICS},
                  "per_class": metrics["per_class"], "confusion": metrics["confusion"],
                  "best_epoch": None, "dev_score": _score(dev_probs, weights, labels, metric),
                  "weights": weights_by_job[job.key], "train_s": 0.0}
        write_job(out, record, frames[0], frames[1])
    return finish_fused(out, runs, jobs, classes, metric, key, left_out, weights_by_job)


