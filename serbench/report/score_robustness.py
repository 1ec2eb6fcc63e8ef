"""``serbench score PERTURBED.csv --clean CLEAN.csv``: the robustness section of a run, from
predictions made anywhere.

The perturbed file is a run's ``predictions_perturbed.csv`` or any table with a ``condition``
column beside the columns ``serbench score`` reads; each condition's rows must hold one
prediction for every (fold, seed, utterance) of the clean file and no other. Each condition is
scored as ``serbench score`` scores a file (:func:`serbench.report.score.job_records`) and compared with
the clean file by :func:`serbench.report.robustness.condition`, the computation a run uses, so a run's
own two files reproduce its ``result.json`` section.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from serbench.api.errors import SerbenchError
from serbench.report.robustness import ROBUSTNESS_PARAMS, RULE, condition, paired_rows
from serbench.report.score import choose_classes, job_records, read_predictions, score_file


def _conditions(path: Path) -> pd.Series:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=lambda c: c == "condition")
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise SerbenchError(f"{path}: not a predictions table ({str(exc).splitlines()[0]})") from None
    if "condition" not in frame.columns:
        raise SerbenchError(f"{path}:1: no 'condition' column (--clean compares a file of perturbed predictions, "
                            "e.g. a run's predictions_perturbed.csv, with the clean one)")
    empty = frame.index[frame["condition"] == ""]
    if len(empty):
        raise SerbenchError(f"{path}:{int(empty[0]) + 2}: empty condition")
    return frame["condition"]


def score_robustness(path: str | Path, clean_path: str | Path, classes: list[str] | None = None,
                     thresholds: dict | None = None) -> dict:
    """``{file, clean, conditions: {name: entry}, rule}``, each entry as a result's robustness section's."""
    path, clean_path = Path(path), Path(clean_path)
    thresholds = {**{p.name: p.default for p in ROBUSTNESS_PARAMS}, **(thresholds or {})}
    clean_scored = score_file(clean_path, classes)
    chosen = clean_scored["classes"]
    clean_table = read_predictions(clean_path)
    labels = _conditions(path)
    table = read_predictions_by_condition(path, labels)
    out = {}
    for name, part in table.items():
        choose_classes(path, part, chosen, None)  # every label and prediction is one of the clean file's classes
        keys = ["fold", "seed", "utterance_id"]
        expected = set(map(tuple, clean_table.frame[keys].itertuples(index=False)))
        found = list(map(tuple, part.frame[keys].itertuples(index=False)))
        strangers = [k for k, key in enumerate(found) if key not in expected]
        if strangers or len(found) != len(expected):
            where = f"{path}:{part.lines[strangers[0]]}" if strangers else str(path)
            raise SerbenchError(f"{where}: condition {name!r} does not pair with {clean_path}: "
                                + (f"utterance {found[strangers[0]][2]!r} of fold {found[strangers[0]][0]!r} seed "
                                   f"{found[strangers[0]][1]} is not in it" if strangers else
                                   f"{len(found)} predictions for its {len(expected)}"))
        rows = paired_rows(clean_table.frame, part.frame)
        records = job_records(rows, chosen)
        clean_records = job_records(clean_table.frame, chosen)
        out[name] = condition(clean_table.frame, clean_records, rows, records, chosen,
                              clean_scored["speakers"]["known"], thresholds)
    return {"file": str(path), "clean": str(clean_path), "classes": chosen, "conditions": out, "rule": RULE}


def read_predictions_by_condition(path: Path, labels: pd.Series) -> dict:
    """Each condition's rows read and checked as ``serbench score`` reads a file (a duplicate
    utterance within a condition, an empty label, ... named by the file's line)."""
    import tempfile

    from serbench.api.textfiles import csv_rows

    header, rows = csv_rows(path)
    rows = list(rows)
    out = {}
    for name in dict.fromkeys(labels):
        with tempfile.TemporaryDirectory() as folder:
            part_path = Path(folder) / "part.csv"
            kept = [(line, row) for line, row in rows if row.get("condition") == name]
            frame = pd.DataFrame([row for _, row in kept], columns=header).drop(columns="condition")
            frame.to_csv(part_path, index=False)
            try:
                part = read_predictions(part_path)
            except SerbenchError as exc:  # name the original file and line, not the temporary part
                message = str(exc)
                prefix = f"{part_path}:"
                if message.startswith(prefix):
                    number, _, rest = message[len(prefix):].partition(":")
                    line = kept[int(number) - 2][0] if number.isdigit() and int(number) >= 2 else 1
                    message = f"{path}:{line}:{rest}"
                raise SerbenchError(f"{message} (condition {name!r})") from None
        part.lines = [kept[line - 2][0] for line in part.lines]  # the original file's lines
        out[name] = part
    return out
