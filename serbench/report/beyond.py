"""A result's scores beyond accuracy: ``groups`` (per gender and speaker, fairness) and
``calibration`` (ECE, Brier, NLL), computed the same way by ``finish`` and by ``serbench score``
so that a run's own ``predictions.csv`` reproduces its ``result.json``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from serbench.report import calibration, groups
from serbench.report.report_options import REPORT_PARAMS

DEFAULTS = {p.name: p.default for p in REPORT_PARAMS}


def score_beyond(predictions: pd.DataFrame, classes: list[str], speakers_known: bool, summary: dict,
                 report: Mapping | None = None, dev_path: Callable[[str, int], Path] | None = None,
                 where: str = "predictions") -> dict:
    """``{"groups": ..., "calibration": ...}``; ``calibration`` is None when the table has no
    ``prob_<class>`` columns. ``dev_path`` (a run's ``folds/*.dev.csv``) is needed only for
    ``report.temperature_scaling``."""
    options = {**DEFAULTS, **(report or {})}
    if not classes or "prediction" not in predictions.columns:  # not a categorical result: nothing here applies
        return {"groups": None, "calibration": None}
    per_class = (options["fairness_recall_per_class"], options["fairness_precision_per_class"])
    out = {"groups": groups.summarize(predictions, classes, speakers_known, summary, options["fairness_threshold"],
                                      per_class)}
    if not all(c in predictions.columns for c in calibration.prob_columns(classes)):
        out["calibration"] = None
        return out
    probs = calibration.probabilities(predictions, classes, where)
    scored = calibration.summarize(predictions, probs, classes, speakers_known)
    scored["temperature_scaling"] = {"enabled": bool(options["temperature_scaling"])}
    if options["temperature_scaling"] and dev_path is not None:
        scored["temperature_scaling"].update(
            calibration.temperature_scaled(predictions, probs, classes, speakers_known, dev_path))
    out["calibration"] = scored
    return out

