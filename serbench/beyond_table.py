"""How the ``groups`` and ``calibration`` sections of a result are shown: rows of the run
table (``serbench run``, ``finish``, ``score``) and the leaderboard's fairness cell. No pandas
or scipy here: the CLI imports it to build its tables."""

from __future__ import annotations

from collections.abc import Mapping


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


FAIRNESS_COLUMN = "UA F - M (fairness)"


def fairness_cell(data: Mapping, ci: str = "t") -> str:
    """The leaderboard's fairness cell: ``+7.50 [-13.32, 28.32] pass`` (female - male UA in
    points with its cluster interval, then audEERING's flag), ``-`` when no gender is known.
    ``ci`` is accepted for symmetry with the metric cells: the difference has only the
    cluster interval (a Student-t over folds of a difference would be the same numbers)."""
    gender = (data.get("groups") or {}).get("gender") if isinstance(data.get("groups"), dict) else None
    difference = (gender or {}).get("difference")
    if not difference:
        return "-"
    entry = difference["ua"]
    shown = f"{entry['mean'] * 100:+.2f} " + _percent(entry["ci95"], "(no interval)")
    return f"{shown} {fairness_mark(data)}".strip()
