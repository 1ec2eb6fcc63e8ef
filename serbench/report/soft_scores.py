"""result.json's ``soft_labels`` entry: EMO-SUPERB's soft-label metric summarised over folds.

Each job records its ``soft_metrics`` (:func:`serbench.api.soft_labels.job_metrics`) when every
test utterance has a rater distribution; the run's entry gives the metric per fold (mean over
seeds) and its mean, std and Student-t ci95 over folds, as for the headline metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from serbench.api import soft_labels
from serbench.report.stats import clip, summarize


def summary(records: Sequence[Mapping]) -> dict:
    """result.json's ``soft_labels`` entry: the metric per fold (mean over seeds), its mean,
    std and Student-t ci95 over folds; empty when the jobs scored none."""
    by_fold: dict[str, list[float]] = {}
    for record in records:
        value = (record.get("soft_metrics") or {}).get(soft_labels.METRIC)
        if value is None:
            return {}
        by_fold.setdefault(str(record["fold"]), []).append(float(value))
    if not by_fold:
        return {}
    entry = summarize([float(np.mean(v)) for v in by_fold.values()])
    return {"soft_labels": {"metric": soft_labels.METRIC, "definition": soft_labels.DEFINITION,
                            "per_fold": {f: float(np.mean(v)) for f, v in by_fold.items()},
                            soft_labels.METRIC: {**entry, "ci95": clip(entry["ci95"])}}}
