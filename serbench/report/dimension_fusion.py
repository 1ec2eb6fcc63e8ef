"""``serbench fuse`` for dimensional runs (``--task dimensional``): a weighted mean of the runs'
predicted values, the weights fitted on dev CCC only.

For each (fold, seed) job and each dimension, a weight vector w (one per run, non-negative,
summing to 1) is fitted on the runs' dev predictions by COBYLA (scipy) to maximise the CCC of
``sum_m w_m pred_m`` against the dev truth; test is then scored once with those weights. As
the categorical fusion does, the optimiser starts from the plain mean (equal weights) and the
kept weights are never worse on dev than the plain mean or any single run: if COBYLA ends below
one of them, that candidate is kept. One weight vector per dimension (a system may be better at
arousal than at valence), not one per run: serbench's own choice, recorded in the fused run's
``config.json`` and job records.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from serbench.api.errors import SerbenchError
from serbench.api.work import Job
from serbench.report.dimension_results import table_metrics
from serbench.report.dimensions import ccc
from serbench.report.fused_run import finish_fused
from serbench.report.results import write_job
from serbench.report.rundir import RunDir

WEIGHTING = "per dimension, simplex weights fitted on dev CCC (COBYLA from equal weights; never worse on dev than equal weights or any single run)"


def fit_weights(dev_values: np.ndarray, truth: np.ndarray, max_iter: int = 200) -> np.ndarray:
    """w [models], w >= 0, sum 1, maximising the dev CCC of ``w @ dev_values`` ([models, N])."""
    models = dev_values.shape[0]
    start = np.full(models, 1.0 / models)

    def score(w: np.ndarray) -> float:
        return ccc(w @ dev_values, truth)

    def objective(w: np.ndarray) -> float:
        w = np.clip(w, 0.0, None)
        return -score(w / max(w.sum(), 1e-12))

    constraints = [{"type": "ineq", "fun": lambda w: w}, {"type": "ineq", "fun": lambda w: w.sum() - 1 + 1e-9},
                   {"type": "ineq", "fun": lambda w: 1 + 1e-9 - w.sum()}]
    found = minimize(objective, start, method="COBYLA", constraints=constraints,
                     options={"maxiter": max_iter, "rhobeg": 0.3})
    fitted = np.clip(found.x, 0.0, None)
    fitted = fitted / fitted.sum() if fitted.sum() > 0 else start
    candidates = [fitted, start] + list(np.eye(models))
    return max(candidates, key=score)


def read_sources(runs, jobs, dimensions: Sequence[str]) -> dict:
    """Each job's dev and test predictions of every run, indexed by utterance id; the runs' splits
    must agree and every table must have the ``pred_`` / ``true_`` columns."""
    sources = {}
    needed = [f"{side}_{d}" for d in dimensions for side in ("pred", "true")]
    for fold, seed in jobs:
        dev, test = [], []
        for r in runs:
            for path, into in ((RunDir(r.run_dir).job_dev((fold, seed)), dev), (RunDir(r.run_dir).job_predictions((fold, seed)), test)):
                if not path.exists():
                    raise SerbenchError(f"{path}: missing (runs made before dev predictions were kept cannot be fused)")
                frame = pd.read_csv(path, dtype={"fold": str, "speaker": str, "utterance_id": str})
                missing = [c for c in needed if c not in frame.columns]
                if missing:
                    raise SerbenchError(f"{path}: no {missing[0]} column")
                into.append(frame.set_index("utterance_id"))
        for frames in (dev, test):
            if any(set(f.index) != set(frames[0].index) for f in frames):
                raise SerbenchError(f"fold {fold}: the runs' dev or test utterances differ; fusion needs the same splits")
        for frames in (dev, test):
            ids = frames[0].index
            for f, r in zip(frames[1:], runs[1:]):
                for d in dimensions:
                    if not np.allclose(f.loc[ids, f"true_{d}"].to_numpy(), frames[0].loc[ids, f"true_{d}"].to_numpy()):
                        raise SerbenchError(f"{r.run_dir}: its true_{d} values differ from {runs[0].run_dir}'s in fold "
                                            f"{fold}; fusion needs the same references")
        sources[(fold, seed)] = (dev, test)
    return sources


def fused_tables(dev: list[pd.DataFrame], test: list[pd.DataFrame], dimensions: Sequence[str]):
    """The fused dev and test tables of one job and its weights ``{dim: [w per run]}``."""
    dev_ids, test_ids = dev[0].index, test[0].index
    weights = {}
    out = []
    for source, ids in ((test, test_ids), (dev, dev_ids)):
        keep = ["fold", "seed", "speaker", *(["gender"] if "gender" in source[0].columns else []), "label"]
        frame = source[0].loc[ids, keep].reset_index()
        out.append(frame[["fold", "seed", "utterance_id", *keep[2:]]])
    for d in dimensions:
        dev_values = np.stack([f.loc[dev_ids, f"pred_{d}"].to_numpy(dtype=np.float64) for f in dev])
        w = fit_weights(dev_values, dev[0].loc[dev_ids, f"true_{d}"].to_numpy(dtype=np.float64))
        weights[d] = w.round(6).tolist()
        for frame, source, ids in ((out[0], test, test_ids), (out[1], dev, dev_ids)):
            values = w @ np.stack([f.loc[ids, f"pred_{d}"].to_numpy(dtype=np.float64) for f in source])
            frame[f"pred_{d}"] = np.array([float(f"{v:.6f}") for v in values])
            frame[f"true_{d}"] = source[0].loc[ids, f"true_{d}"].to_numpy(dtype=np.float64)
    return out[0], out[1], weights


def write(runs, jobs, sources, dimensions: Sequence[str], classes, key: dict, left_out: dict, out: Path):
    """The fused run directory, written through the same ``finish`` a run uses."""
    first = runs[0].data
    weights_by_job = {}
    for fold, seed in jobs:
        dev, test = sources[(fold, seed)]
        frame, dev_frame, weights = fused_tables(dev, test, dimensions)
        weights_by_job[Job(fold, seed).key] = weights
        source = next(f for f in first["folds"] if (f["fold"], f["seed"]) == (fold, seed))
        dev_scores = table_metrics(dev_frame, dimensions)
        record = {"fold": fold, "seed": seed, "n_train": source["n_train"], "n_dev": len(dev_frame),
                  "n_test": len(frame), "metrics": table_metrics(frame, dimensions), "best_epoch": None,
                  "dev_score": dev_scores["ccc_mean"], "weights": weights, "train_s": 0.0}
        write_job(out, record, frame, dev_frame)
    return finish_fused(out, runs, jobs, classes, "ccc_mean", key, left_out, weights_by_job,
                        extra={"weighting": WEIGHTING}, dimensions=dimensions)
