"""A result's scores beyond accuracy: ``groups`` (per gender and speaker, fairness) and
``calibration`` (ECE, Brier, NLL), computed the same way by ``finish`` and by ``serbench score``
so that a run's own ``predictions.csv`` reproduces its ``result.json``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from serbench import calibration, groups
from serbench.report_options import REPORT_PARAMS

DEFAULTS = {p.name: p.default for p in REPORT_PARAMS}


def score_beyond(predictions: pd.DataFrame, classes: list[str], speakers_known: bool, summary: dict,
                 report: Mapping | None = None, dev_path: Callable[[str, int], Path] | None = None,
                 where: str = "predictions") -> dict:
    """``{"groups": ..., "calibration": ...}``; ``calibration`` is None when the table has no
    ``prob_<class>`` columns. ``dev_path`` (a run's ``folds/*.dev.csv``) is needed only for
    ``report.temperature_scaling``."""
    options = {**DEFAULTS, **(report or {})}
    out = {"groups": groups.summarize(predictions, classes, speakers_known, summary, options["fairness_threshold"])}
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


def _percent(interval: list[float] | None, why: str, scale: float = 100.0, digits: int = 2) -> str:
    return why if interval is None else f"[{interval[0] * scale:.{digits}f}, {interval[1] * scale:.{digits}f}]"


def fairness_mark(data: Mapping) -> str:
    """``pass``, ``FAIL`` (audEERING's rule broken) or '' (no gender known, or an older result)."""
    gender = ((data.get("groups") or {}).get("gender") or {}) if isinstance(data.get("groups"), dict) else {}
    passed = (gender.get("fairness") or {}).get("passed") if isinstance(gender, dict) else None
    return "" if passed is None else ("pass" if passed else "FAIL")


def table_rows(data: Mapping, metric: str = "ua") -> list[tuple[str, str, str, str, str]]:
    """Rows for a run's table under the accuracy metrics (metric, mean, std, t interval, cluster
    interval): ``metric`` per gender and female - male, the fairness flag, the spread over
    speakers, and the calibration metrics; nothing for a result without those sections."""
    rows = []
    shown = {"ua": "UA", "wa": "WA", "macro_f1": "macro-F1"}.get(metric, metric)
    gender = (data.get("groups") or {}).get("gender")
    if gender:
        for g, entry in gender["groups"].items():
            why = "none: " + str(entry["cluster"].get("reason"))
            rows.append((f"{shown} {g} ({entry['utterances']} utt.)", f"{entry[metric]['mean'] * 100:.2f}", "", "",
                         _percent(entry[metric]["ci95"], why)))
        difference = gender.get("difference")
        if difference:
            why = "none: " + str(difference["cluster"].get("reason"))
            rows.append((f"{shown} {difference['groups']}", f"{difference[metric]['mean'] * 100:+.2f}", "", "",
                         _percent(difference[metric]["ci95"], why)))
        fair = gender["fairness"]
        if fair["passed"] is not None:
            worst = max(fair["checks"], key=lambda c: abs(c["difference_to_all"]))
            rows.append(("fairness (audEERING)", "pass" if fair["passed"] else "FAIL", "", "",
                         f"max |{shown}(sex) - {shown}(all)| {abs(worst['difference_to_all']) * 100:.2f} "
                         f"<= {fair['threshold'] * 100:.2f}?"))
    speaker = (data.get("groups") or {}).get("speaker")
    if speaker:
        spread = speaker["spread"][metric]
        rows.append((f"{shown} per speaker ({len(speaker['speakers'])})", "", f"{spread['std'] * 100:.2f}", "",
                     f"{spread['min'] * 100:.2f} ({spread['worst']}) to {spread['max'] * 100:.2f} ({spread['best']})"))
    scored = data.get("calibration")
    if scored:
        why = "none: " + str(scored["cluster"].get("reason"))
        for name, key, scale, digits in (("ECE %", "ece", 100, 2), ("classwise ECE %", "classwise_ece", 100, 2),
                                         ("Brier (0-2, not %)", "brier", 1, 4), ("NLL (nats, not %)", "nll", 1, 4)):
            rows.append((name, f"{scored[key]['mean'] * scale:.{digits}f}", "", "",
                         _percent(scored[key]["ci95"], why, scale, digits)))
        scaled = scored.get("temperature_scaling") or {}
        if scaled.get("enabled") and "ece" in scaled:
            rows.append(("ECE % after T (dev-fitted)", f"{scaled['ece']['mean'] * 100:.2f}", "", "",
                         _percent(scaled["ece"]["ci95"], why)))
            rows.append(("NLL after T (dev-fitted)", f"{scaled['nll']['mean']:.4f}", "", "",
                         _percent(scaled["nll"]["ci95"], why, 1, 4)))
    return rows
