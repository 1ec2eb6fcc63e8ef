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


def _dimensional(data: Mapping) -> bool:
    return data.get("task") == "dimensional"


def _check_name(check: Mapping) -> str:
    """``ua``, ``ccc_arousal``, ``recall_per_class angry``: what a fairness check compared."""
    return f"{check['metric']} {check['class']}" if check.get("class") else str(check["metric"])


def worst_check(fair: Mapping) -> Mapping:
    """The check furthest past (or closest to) its own threshold (checks of one result may have
    different thresholds: audEERING's recall per class is 0.175, UA's 0.075)."""
    return max(fair["checks"], key=lambda c: abs(c["difference_to_all"]) - c.get("threshold", fair["threshold"]))


def table_rows(data: Mapping, metric: str | None = None) -> list[tuple[str, str, str, str, str]]:
    """Rows for a run's table under the accuracy metrics (metric, mean, std, t interval, cluster
    interval): ``metric`` (UA; a dimensional result's mean CCC) per gender and female - male,
    the fairness flag, the spread over speakers, and the calibration metrics; nothing for a
    result without those sections. Proportions in percent, a CCC as it is."""
    rows = []
    metric = metric or ("ccc_mean" if _dimensional(data) else "ua")
    shown = {"ua": "UA", "wa": "WA", "macro_f1": "macro-F1"}.get(metric, metric)
    scale, digits = (1.0, 3) if _dimensional(data) else (100.0, 2)
    gender = (data.get("groups") or {}).get("gender")
    if gender:
        for g, entry in gender["groups"].items():
            why = "none: " + str(entry["cluster"].get("reason"))
            rows.append((f"{shown} {g} ({entry['utterances']} utt.)", f"{entry[metric]['mean'] * scale:.{digits}f}",
                         "", "", _percent(entry[metric]["ci95"], why, scale, digits)))
        difference = gender.get("difference")
        if difference:
            why = "none: " + str(difference["cluster"].get("reason"))
            rows.append((f"{shown} {difference['groups']}", f"{difference[metric]['mean'] * scale:+.{digits}f}", "",
                         "", _percent(difference[metric]["ci95"], why, scale, digits)))
        fair = gender["fairness"]
        if fair["passed"] is not None:
            worst = worst_check(fair)
            rows.append(("fairness (audEERING)", "pass" if fair["passed"] else "FAIL", "", "",
                         f"worst: |{_check_name(worst)}({worst['group']}) - all| "
                         f"{abs(worst['difference_to_all']) * scale:.{digits}f} "
                         f"<= {worst.get('threshold', fair['threshold']) * scale:.{digits}f}?"))
    speaker = (data.get("groups") or {}).get("speaker")
    if speaker:
        spread = speaker["spread"][metric]
        rows.append((f"{shown} per speaker ({len(speaker['speakers'])})", "", f"{spread['std'] * scale:.{digits}f}", "",
                     f"{spread['min'] * scale:.{digits}f} ({spread['worst']}) to {spread['max'] * scale:.{digits}f} "
                     f"({spread['best']})"))
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
DIMENSIONAL_FAIRNESS_COLUMN = "CCC F - M (fairness)"


def fairness_column(data: Mapping) -> str:
    """The fairness column's header for a result of this task."""
    return DIMENSIONAL_FAIRNESS_COLUMN if _dimensional(data) else FAIRNESS_COLUMN


def fairness_cell(data: Mapping, ci: str = "t") -> str:
    """The leaderboard's fairness cell: ``+7.50 [-13.32, 28.32] pass`` (female - male UA in
    points with its cluster interval, then audEERING's flag), ``-`` when no gender is known.
    ``ci`` is accepted for symmetry with the metric cells: the difference has only the
    cluster interval (a Student-t over folds of a difference would be the same numbers)."""
    gender = (data.get("groups") or {}).get("gender") if isinstance(data.get("groups"), dict) else None
    difference = (gender or {}).get("difference")
    if not difference:
        return "-"
    if _dimensional(data):  # female - male mean CCC, as it is
        entry = difference["ccc_mean"]
        shown = f"{entry['mean']:+.3f} " + _percent(entry["ci95"], "(no interval)", 1.0, 3)
        return f"{shown} {fairness_mark(data)}".strip()
    entry = difference["ua"]
    shown = f"{entry['mean'] * 100:+.2f} " + _percent(entry["ci95"], "(no interval)")
    return f"{shown} {fairness_mark(data)}".strip()


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _entry_problem(entry: object, where: str) -> str:
    """A ``{"mean": number, "ci95": [low, high] | null}`` entry."""
    if not isinstance(entry, dict) or not _number(entry.get("mean")):
        return f"{where} is not a mapping with a numeric mean"
    ci = entry.get("ci95")
    if ci is not None and (not isinstance(ci, list) or len(ci) != 2 or not all(_number(v) for v in ci)):
        return f"{where}.ci95 is not null or a [low, high] pair of numbers"
    return ""


def _cluster_problem(section: dict, where: str) -> str:
    cluster = section.get("cluster")
    if not isinstance(cluster, dict) or not (cluster.get("reason") is None or isinstance(cluster["reason"], str)):
        return f"{where}.cluster is not a mapping with a text or null reason"
    return ""


def beyond_problem(data: Mapping, metrics: tuple[str, ...] = ("ua", "wa", "macro_f1")) -> str:
    """What a table would stumble on in a result's ``groups`` and ``calibration`` sections
    ('' when nothing, or when a result predates them)."""
    found = data.get("groups")
    if found is not None:
        if not isinstance(found, dict):
            return "groups is not a mapping"
        gender = found.get("gender")
        if gender is not None:
            if not isinstance(gender, dict) or not isinstance(gender.get("groups"), dict):
                return "groups.gender is not a mapping with a groups mapping"
            parts = [(f"groups.gender.groups.{g}", e) for g, e in gender["groups"].items()]
            if gender.get("difference") is not None:
                parts.append(("groups.gender.difference", gender["difference"]))
            for where, part in parts:
                if not isinstance(part, dict):
                    return f"{where} is not a mapping"
                problem = _cluster_problem(part, where) or next(
                    (p for m in metrics if (p := _entry_problem(part.get(m), f"{where}.{m}"))), "")
                if problem:
                    return problem
                if "utterances" in part and not _number(part["utterances"]):
                    return f"{where}.utterances is not a number"
            fair = gender.get("fairness")
            if (not isinstance(fair, dict) or fair.get("passed") not in (True, False, None)
                    or not _number(fair.get("threshold")) or not isinstance(fair.get("checks"), list)
                    or not all(isinstance(c, dict) and _number(c.get("difference_to_all")) for c in fair["checks"])):
                return "groups.gender.fairness is not a mapping with passed, a numeric threshold and checks"
        speaker = found.get("speaker")
        if speaker is not None:
            spread = speaker.get("spread") if isinstance(speaker, dict) else None
            if (not isinstance(spread, dict) or not isinstance(speaker.get("speakers"), dict)
                    or not all(isinstance(spread.get(m), dict) and all(_number(spread[m].get(k)) for k in
                                                                       ("min", "max", "std")) for m in metrics)):
                return "groups.speaker is not a mapping with speakers and a numeric spread per metric"
    scored = data.get("calibration")
    if scored is not None:
        if not isinstance(scored, dict):
            return "calibration is not a mapping"
        problem = _cluster_problem(scored, "calibration") or next(
            (p for m in ("ece", "classwise_ece", "brier", "nll") if (p := _entry_problem(scored.get(m), f"calibration.{m}"))), "")
        if problem:
            return problem
        scaled = scored.get("temperature_scaling")
        if scaled is not None and not isinstance(scaled, dict):
            return "calibration.temperature_scaling is not a mapping"
        if isinstance(scaled, dict) and scaled.get("enabled") and "ece" in scaled:
            problem = next((p for m in ("ece", "nll") if (p := _entry_problem(scaled.get(m), f"calibration.temperature_scaling.{m}"))), "")
            if problem:
                return problem
    return ""


FAIRNESS_CSV = ["ua_f_minus_m", "ua_f_minus_m_low", "ua_f_minus_m_high", "fairness"]


def fairness_values(data: Mapping) -> list[str]:
    """The leaderboard CSV's fairness cells, in percent points (empty when no gender is known; a
    dimensional result's UA cells are empty, its flag is kept)."""
    gender = (data.get("groups") or {}).get("gender") or {}
    if _dimensional(data):
        return ["", "", "", fairness_mark(data)]
    entry = (gender.get("difference") or {}).get("ua")
    if not entry:
        return ["", "", "", ""]
    low, high = entry["ci95"] or ["", ""]
    return [f"{entry['mean'] * 100:.4f}"] + [f"{v * 100:.4f}" if v != "" else "" for v in (low, high)] + [fairness_mark(data)]
