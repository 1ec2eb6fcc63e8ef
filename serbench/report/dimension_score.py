"""``serbench score`` for dimensional predictions: a table with ``pred_<dim>`` and ``true_<dim>``
columns (arousal, valence, dominance; any subset, both columns of each), as a dimensional run
writes them, scored exactly as the run scores its jobs (:func:`serbench.report.dimension_results.table_metrics`)
and summarised as it summarises them (:func:`serbench.report.dimension_results.fields`). A run's own
``predictions.csv`` therefore reproduces its ``result.json``. ``fold``, ``seed`` and ``speaker``
are optional as for categorical tables; every value must be a finite number, else the error
names the file and line. A ``gender`` column (F / M / empty) adds the per-sex section and the
fairness flag (:mod:`serbench.report.dimension_groups`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from serbench.api.errors import SerbenchError
from serbench.api.protocol import gender
from serbench.report.dimension_results import fields, table_metrics
from serbench.report.dimensions import DIMENSIONS

ONE_FOLD, ONE_SEED = "all", 0


def dimensions_in(header: list[str]) -> list[str]:
    """The dimensions a table has both a ``pred_`` and a ``true_`` column for, in table order."""
    return [d for d in DIMENSIONS if f"pred_{d}" in header and f"true_{d}" in header]


def _number(text: str, where: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise SerbenchError(f"{where}: {column} {text!r} is not a finite number")
    return value


def read_table(path: Path, header: list[str], rows) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The checked rows as a frame (fold, seed, utterance_id, speaker, pred_/true_ columns), the
    dimensions and the notes on what had to be assumed."""
    dims = dimensions_in(header)
    half = [c for d in DIMENSIONS for c in (f"pred_{d}", f"true_{d}") if c in header and d not in dims]
    if half:
        raise SerbenchError(f"{path}:1: column {half[0]!r} without its partner (each dimension needs pred_ and true_)")
    if "utterance_id" not in header:
        raise SerbenchError(f"{path}:1: no 'utterance_id' column (a dimensional table needs it, and pred_<dim>, true_<dim>)")
    has = {c: c in header for c in ("fold", "seed", "speaker", "gender")}
    out: dict[str, list] = {c: [] for c in ("fold", "seed", "utterance_id", "speaker")}
    if has["gender"]:
        out["gender"] = []
    values: dict[str, list[float]] = {f"{s}_{d}": [] for d in dims for s in ("pred", "true")}
    seen: dict[tuple, int] = {}
    for line, row in rows:
        where = f"{path}:{line}"
        for column in ("utterance_id",) + tuple(c for c in ("fold", "speaker") if has[c]):
            if not row[column]:
                raise SerbenchError(f"{where}: empty {column}")
        fold = row["fold"] if has["fold"] else ONE_FOLD
        try:
            seed = int(row["seed"]) if has["seed"] else ONE_SEED
        except ValueError:
            raise SerbenchError(f"{where}: seed {row['seed']!r} is not an integer") from None
        key = (fold, seed, row["utterance_id"])
        if key in seen:
            raise SerbenchError(f"{where}: utterance {key[2]!r} of fold {fold!r} seed {seed} is already on line {seen[key]}")
        seen[key] = line
        out["fold"].append(fold)
        out["seed"].append(seed)
        out["utterance_id"].append(row["utterance_id"])
        out["speaker"].append(row["speaker"] if has["speaker"] else row["utterance_id"])
        if has["gender"]:
            out["gender"].append(gender(row["gender"], where) or "")
        for column in values:
            values[column].append(_number(row[column], where, column))
    if not seen:
        raise SerbenchError(f"{path}: a header and no rows: nothing to score")
    frame = pd.DataFrame({**out, **values})
    frame["seed"] = frame["seed"].astype(np.int64)
    notes = [f"dimensional predictions: {', '.join(dims)} (CCC with population variances, Pearson r, MAE)"]
    if not has["fold"]:
        notes.append(f"no fold column: one fold ({ONE_FOLD!r}), so no Student-t interval over folds")
    if not has["seed"]:
        notes.append(f"no seed column: one seed ({ONE_SEED})")
    return frame, dims, notes


def score_table(path: Path, header: list[str], rows, fairness_threshold: float | None = None) -> dict:
    """One dimensional predictions file scored like a run: ``{file, task, dimensions, metrics,
    summary, folds, overall, speakers, groups, notes}`` (the fairness flag at
    ``fairness_threshold``, audEERING's when None)."""
    from serbench.report.dimension_results import groups
    frame, dims, notes = read_table(path, header, rows)
    records = [{"fold": fold, "seed": int(seed), "n_test": len(part), "metrics": table_metrics(part, dims)}
               for (fold, seed), part in frame.groupby(["fold", "seed"], sort=False)]
    known = "speaker" in header
    scored = fields(records, frame, dims, known)
    if not known:
        from serbench.report.stats import FOLDS_WITHOUT_SPEAKERS_NOTE, SPEAKERS_UNKNOWN_NOTE

        unit = scored["summary"][scored["main_metric"]]["cluster"]["unit"]
        notes.append(FOLDS_WITHOUT_SPEAKERS_NOTE if unit == "fold" else SPEAKERS_UNKNOWN_NOTE)
    report = {} if fairness_threshold is None else {"fairness_threshold": fairness_threshold}
    scored["groups"] = groups(frame, dims, known, scored["summary"], report)
    return {"file": str(path), "classes": [], **scored, "folds": records,
            "speakers": {"source": "the file's speaker column" if known else "unknown", "known": known,
                         "count": int(frame["speaker"].nunique())},
            "notes": notes}
