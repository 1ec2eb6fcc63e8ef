"""What a dimensional result holds beyond a categorical one, and how readers tell them apart.

A categorical ``result.json`` is unchanged. A dimensional one (``--task dimensional``) adds
``task: "dimensional"``, ``dimensions`` (what was regressed, in column order) and ``metrics``
(the summary's keys: ``ccc_mean``, then ``ccc_<dim>``, ``pearson_<dim>``, ``mae_<dim>``); its
``main_metric`` is ``ccc_mean``, and ``overall`` holds the metrics over every job's test
predictions together. Tables, comparisons and ``serbench score`` ask :func:`metric_names` which
metrics a result has instead of assuming UA, WA and macro-F1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from serbench.report.dimension_stats import summarize_dimensional
from serbench.report.dimensions import MAIN_METRIC, metric_bounds, metric_names, score
from serbench.report.metrics import METRICS

TASK = "dimensional"


def is_dimensional(data: Mapping) -> bool:
    return isinstance(data, Mapping) and data.get("task") == TASK


def dimensions_of(data: Mapping) -> list[str]:
    return list(data.get("dimensions") or []) if is_dimensional(data) else []


def dimensions_problem(data: Mapping) -> str:
    """'' unless a result says it is dimensional and its ``dimensions`` are not a list of known ones."""
    from serbench.report.dimensions import DIMENSIONS

    if not is_dimensional(data):
        return ""
    found = data.get("dimensions")
    if not isinstance(found, list) or not found or not all(d in DIMENSIONS for d in found) or len(set(found)) < len(found):
        return f"dimensions is {found!r:.60}, not a list of distinct names from {', '.join(DIMENSIONS)}"
    return ""


def result_metrics(data: Mapping) -> tuple[str, ...]:
    """The summary keys a result has: its ``metrics`` list when dimensional, else UA, WA, macro-F1."""
    return metric_names(dimensions_of(data)) if is_dimensional(data) else METRICS


def prediction_columns(data: Mapping) -> list[str]:
    """The columns its ``predictions.csv`` must have besides fold, seed, utterance_id, speaker, label."""
    if not is_dimensional(data):
        return ["prediction"]
    return [f"{side}_{d}" for d in dimensions_of(data) for side in ("pred", "true")]


def table_metrics(frame: pd.DataFrame, dimensions: Sequence[str]) -> dict[str, float]:
    """Every dimensional metric of one predictions table (``pred_<dim>`` against ``true_<dim>``):
    how a job is scored, and how ``serbench score`` scores a table (torch-free)."""
    return score(frame[[f"pred_{d}" for d in dimensions]].to_numpy(dtype=np.float64),
                 frame[[f"true_{d}" for d in dimensions]].to_numpy(dtype=np.float64), dimensions)


def fields(records: list[dict], predictions: pd.DataFrame, dimensions: Sequence[str], speakers_known: bool) -> dict:
    """The entries a dimensional ``result.json`` holds in place of a categorical summary."""
    pooled = score(predictions[[f"pred_{d}" for d in dimensions]].to_numpy(dtype=np.float64),
                   predictions[[f"true_{d}" for d in dimensions]].to_numpy(dtype=np.float64), dimensions)
    return {
        "task": TASK,
        "dimensions": list(dimensions),
        "metrics": list(metric_names(dimensions)),
        "main_metric": MAIN_METRIC,
        "summary": summarize_dimensional(records, predictions, dimensions, speakers_known),
        "overall": {"over": "every (fold, seed) job's test predictions together", "scale": "[0, 1] (the protocol's)",
                    "metrics": pooled},
    }


def groups(predictions: pd.DataFrame, dimensions: Sequence[str], speakers_known: bool, summary: dict,
           report: Mapping | None = None) -> dict:
    """The ``groups`` section (per sex, per speaker, fairness: :mod:`serbench.report.dimension_groups`),
    at the ``-o report.fairness_threshold`` the run was given (audEERING's 0.075 by default)."""
    from serbench.report import dimension_groups
    from serbench.report.groups import FAIRNESS_THRESHOLD

    threshold = (report or {}).get("fairness_threshold", FAIRNESS_THRESHOLD)
    return dimension_groups.summarize(predictions, dimensions, speakers_known, summary, threshold)


def value_problem(name: str, value: object) -> str:
    """'' when ``value`` is a number inside the metric's range; else why not."""
    lo, hi = metric_bounds(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        return f"{value!r}, not a number in [{lo:g}, {hi:g}]"
    return ""


def shown(name: str, value: float) -> str:
    """A metric as tables print it: proportions as percentages, correlations and MAE as 0.xxx."""
    return f"{value:.3f}" if name.startswith(("ccc", "pearson", "mae")) else f"{value * 100:.2f}"
