"""The run table's robustness rows (``serbench run --perturb``, ``serbench finish``): per
condition, the perturbed UA and WA, the paired UA difference to clean with both intervals, the
share of unchanged predictions and the robustness rule's verdict."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table


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
