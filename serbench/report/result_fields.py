"""The parts of a ``result.json`` that tables, plots and the site read besides its scores.

:func:`serbench.report.results.load_result` checks the summary; a leaderboard row, a figure or a site
page also reads the run id, the configuration's sections, plugin versions, the per-fold
records, classes and confusion counts. A hand-edited or damaged file with one of them of the
wrong type would stop the command with a traceback halfway through writing its outputs, so
each is checked here when the file is read, and the problem named as ``part is X, not Y``.
Fold names become file names in the run directory (``folds/fold-<name>_seed-<n>.json``), so a
fold name must be a safe name (:data:`serbench.report.safe_paths.SAFE_NAME`).
"""

from __future__ import annotations

import math

from serbench.report.dimension_results import is_dimensional, result_metrics
from serbench.report.metrics import METRICS
from serbench.report.safe_paths import SAFE_NAME


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _optional_mapping(data: dict, key: str, where: str, of_mappings: bool = False) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, dict):
        return f"{where}{key} is {_shown(value)}, not a mapping"
    if of_mappings:
        for name, section in value.items():
            if section is not None and not isinstance(section, dict):
                return f"{where}{key}.{name} is {_shown(section)}, not a mapping"
    return ""


def config_problem(config: dict) -> str:
    """What is wrong with the configuration beyond the plugin names ('' when nothing)."""
    for key in ("pooling", "loss"):
        if config.get(key) is not None and not isinstance(config[key], str):
            return f"config.{key} is {_shown(config[key])}, not a name"
    seeds = config.get("seeds") or []
    bad = [s for s in seeds if not _is_int(s)]
    if bad:
        return f"config.seeds holds {_shown(bad[0])}, not an integer seed"
    for key, nested in (("recipe", False), ("overrides", True), ("params", True)):
        problem = _optional_mapping(config, key, "config.", nested)
        if problem:
            return problem
    return ""


def summary_problem(summary: dict, metrics: tuple[str, ...] = METRICS) -> str:
    """What a table would stumble on in a metric entry besides its mean and intervals."""
    for metric in metrics:
        entry = summary[metric]
        speakers = entry.get("speakers")
        if speakers is not None and not _is_int(speakers):
            return f"summary.{metric}.speakers is {_shown(speakers)}, not a number of speakers"
        for key in ("cluster", "bootstrap"):
            record = entry.get(key)
            if record is None:
                continue
            if not isinstance(record, dict):
                return f"summary.{metric}.{key} is {_shown(record)}, not a mapping"
            if record.get("reason") is not None and not isinstance(record["reason"], str):
                return f"summary.{metric}.{key}.reason is {_shown(record['reason'])}, not text"
    return ""


def folds_problem(folds: object, names: tuple[str, ...] = METRICS) -> str:
    """Each per-fold record: a safe fold name, an integer seed and test size, every metric a number."""
    if not isinstance(folds, list):
        return f"folds is {_shown(folds)}, not a list of fold records"
    for k, record in enumerate(folds):
        where = f"folds[{k}]"
        if not isinstance(record, dict):
            return f"{where} is {_shown(record)}, not a fold record"
        if not isinstance(record.get("fold"), (str, int)) or isinstance(record.get("fold"), bool) \
                or not SAFE_NAME.fullmatch(str(record["fold"])):
            return (f"{where}.fold {_shown(record.get('fold'))} cannot name a file (letters, digits, '.', '_' and '-' "
                    "only, not starting with '.')")
        if not _is_int(record.get("seed")):
            return f"{where}.seed is {_shown(record.get('seed'))}, not an integer"
        if record.get("n_test") is not None and not _is_int(record["n_test"]):
            return f"{where}.n_test is {_shown(record['n_test'])}, not a number of utterances"
        metrics = record.get("metrics")
        if not isinstance(metrics, dict) or not all(_is_number(metrics.get(m)) for m in names):
            return f"{where}.metrics is {_shown(metrics)}, not a number for each of {', '.join(names)}"
    return ""


def overall_problem(overall: object, classes: list[str]) -> str:
    """The overall confusion matrix: a square of counts, one row and column per class."""
    if not isinstance(overall, dict):
        return f"overall is {_shown(overall)}, not a mapping"
    counts = (overall.get("confusion") or {}).get("counts") if isinstance(overall.get("confusion"), dict) else None
    if (not isinstance(counts, list) or len(counts) != len(classes)
            or not all(isinstance(row, list) and len(row) == len(classes) and all(_is_number(v) for v in row)
                       for row in counts)):
        return f"overall.confusion.counts is not a {len(classes)} x {len(classes)} table of counts (one per class)"
    return ""


def fields_problem(data: dict) -> str:
    """What is wrong with a result's other parts ('' when nothing); the summary's scores and the
    configuration's plugin names were checked before."""
    run_id = data.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        return f"run_id is {_shown(run_id)}, not a run's name"
    names = result_metrics(data)
    problem = config_problem(data["config"]) or summary_problem(data["summary"], names)
    if problem:
        return problem
    for key in ("annotations", "speakers", "environment"):
        problem = _optional_mapping(data, key, "")
        if problem:
            return problem
    plugins = data.get("plugins")
    if plugins is not None and (not isinstance(plugins, dict)
                                or not all(isinstance(v, (str, int, float)) for v in plugins.values())):
        return f"plugins is {_shown(plugins)}, not a mapping of plugin names to versions"
    classes = data.get("classes")
    if classes is not None and (not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)):
        return f"classes is {_shown(classes)}, not a list of class names"
    if data.get("main_metric") is not None and data["main_metric"] not in names:
        return f"main_metric is {_shown(data['main_metric'])}, not one of {', '.join(names)}"
    if "folds" in data:
        problem = folds_problem(data["folds"], names)
        if problem:
            return problem
    if "robustness" in data:  # serbench run --perturb
        from serbench.report.robustness_report import robustness_problem

        problem = robustness_problem(data["robustness"])
        if problem:
            return problem
    if data.get("overall") is not None and isinstance(classes, list) and not is_dimensional(data):
        problem = overall_problem(data["overall"], classes)
        if problem:
            return problem
    from serbench.report.beyond_table import beyond_problem

    return beyond_problem(data, result_metrics(data))


def missing_parts(data: dict, parts: tuple[str, ...]) -> str:
    """'' when the result holds every one of ``parts`` (a figure or a run page needs its folds
    and classes; a table does not); else the first missing."""
    absent = [p for p in parts if data.get(p) is None]
    return f"no {absent[0]}" if absent else ""
