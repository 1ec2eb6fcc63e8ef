"""The run table's robustness rows (``serbench run --perturb``, ``serbench finish``): per
condition, the perturbed UA and WA, the paired UA difference to clean with both intervals, the
share of unchanged predictions and the robustness rule's verdict."""

from __future__ import annotations

import math

from rich.markup import escape
from rich.table import Table


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _interval(value: object) -> bool:
    return value is None or (isinstance(value, list) and len(value) == 2 and all(map(_number, value)))


def robustness_problem(section: object) -> str:
    """What the table would misread in a result's ``robustness`` section ('' when nothing): each
    condition's UA and WA, its UA difference with both intervals, its unchanged share and verdict."""
    if not isinstance(section, dict) or not isinstance(section.get("conditions"), dict):
        return "robustness is not a mapping with conditions"
    for key, entry in section["conditions"].items():
        where = f"robustness.conditions[{key!r}]"
        if not isinstance(entry, dict):
            return f"{where} is not a mapping"
        summary, difference, rule = entry.get("summary"), entry.get("difference"), entry.get("rule")
        if not isinstance(summary, dict) or not all(
                isinstance(summary.get(m), dict) and _number(summary[m].get("mean")) and 0 <= summary[m]["mean"] <= 1
                for m in ("ua", "wa")):
            return f"{where}.summary: ua and wa means are not proportions"
        ua = difference.get("ua") if isinstance(difference, dict) else None
        if not isinstance(ua, dict) or not _number(ua.get("mean")) or not (_interval(ua.get("ci95"))
                                                                             and _interval(ua.get("ci95_bootstrap"))):
            return f"{where}.difference.ua: not a mean with two intervals"
        if not _number(entry.get("unchanged")) or not 0 <= entry["unchanged"] <= 1:
            return f"{where}.unchanged is {entry.get('unchanged')!r}, not a share"
        if not isinstance(rule, dict) or not isinstance(rule.get("passed"), bool) or not (
                _number(rule.get("max_drop")) and _number(rule.get("min_unchanged"))):
            return f"{where}.rule: not a verdict with its thresholds"
    return ""


def _span(interval, why: str = "n/a") -> str:
    return why if interval is None else f"[{interval[0] * 100:+.2f}, {interval[1] * 100:+.2f}]"


def robustness_table(result) -> Table:
    section = result.data["robustness"]
    first = next(iter(section["conditions"].values()), None)
    cluster = (first or {}).get("difference", {}).get("ua", {}).get("cluster") or {}
    unit = f"{cluster.get('clusters')} {cluster.get('unit')}s" if cluster else "clusters"
    rule = (first or {}).get("rule") or {}
    table = Table(title="robustness: each job's model on perturbed copies of its test set (Δ: perturbed - clean); rule: "
                        f"UA drop <= {rule.get('max_drop', 0.05):g} and unchanged >= {rule.get('min_unchanged', 0.5):g}")
    for column in ("condition", "UA %", "WA %", "ΔUA", "ΔUA 95% CI (t, folds)", f"ΔUA 95% CI ({unit})", "unchanged %",
                   "rule"):
        table.add_column(column, justify="left" if column in ("condition", "rule") else "right")
    for key, entry in section["conditions"].items():
        diff, rule = entry["difference"]["ua"], entry["rule"]
        verdict = "pass" if rule["passed"] else "FAIL"
        table.add_row(escape((entry.get("perturbation") or {}).get("label", key)), f"{entry['summary']['ua']['mean'] * 100:.2f}", f"{entry['summary']['wa']['mean'] * 100:.2f}",
                      f"{diff['mean'] * 100:+.2f}", _span(diff["ci95"], "n/a (1 fold)"),
                      _span(diff.get("ci95_bootstrap"), "none: " + str(cluster.get("reason") or "too few clusters")),
                      f"{entry['unchanged'] * 100:.1f}",
                      verdict)
    return table
