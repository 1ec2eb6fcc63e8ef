"""``serbench score``: serbench's metrics and intervals for predictions made anywhere.

A researcher with another toolkit's outputs (or a paper's released predictions) should get
the very numbers a run would print, so nothing here scores on its own: each (fold, seed) job
is scored by :func:`serbench.report.metrics.score` exactly as a run's job is, and the summary and
the overall table come from :func:`serbench.report.results.summarize_run` and
:func:`serbench.report.results.overall`. A run's own ``predictions.csv`` therefore reproduces its
``result.json`` summary exactly. This module only reads the table and says what it had to
assume (no seed, no fold, no speaker), because each assumption changes what an interval means.

It imports no torch: many files can be scored in one quick process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from serbench.api.errors import SerbenchError
from serbench.api.protocol import gender
from serbench.api.textfiles import csv_rows, read_json
from serbench.report.beyond import score_beyond
from serbench.report.groups import FAIRNESS_THRESHOLD
from serbench.report.metrics import METRICS, score
from serbench.report.results import SCHEMA, overall, sha256_of, summarize_run
from serbench.report.rundir import RunDir
from serbench.report.stats import FOLDS_WITHOUT_SPEAKERS_NOTE, SPEAKERS_UNKNOWN_NOTE

REQUIRED = ("utterance_id", "label", "prediction")
OPTIONAL = ("fold", "seed", "speaker", "gender")
PROB_PREFIX = "prob_"
ONE_FOLD = "all"  # the fold of a file without a fold column
ONE_SEED = 0


@dataclass
class Table:
    """The rows of one predictions file, checked, with what had to be assumed about them."""

    frame: pd.DataFrame  # fold (str), seed (int), utterance_id, speaker, label, prediction; file order
    columns: list[str]
    lines: list[int]  # the file line of each row of ``frame``
    notes: list[str] = field(default_factory=list)


def parse_classes(text: str) -> list[str]:
    """``--classes a,b,c``: the class order, refused when a name is empty or given twice."""
    names = [name.strip() for name in text.split(",")]
    if any(not name for name in names):
        raise SerbenchError(f"--classes {text!r}: an empty class name (expected comma-separated names, e.g. neutral,happy)")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise SerbenchError(f"--classes {text!r}: {twice[0]!r} is given twice")
    return names


def read_predictions(path: Path) -> Table:
    """The table a run writes (``fold, seed, utterance_id, speaker, label, prediction``,
    ``prob_<class>...``) or a sparser one: a missing seed is seed 0, a missing fold one fold,
    a missing speaker one pseudo-speaker per utterance. Every bad row is one error naming the
    file and line."""
    if path.is_dir():
        raise SerbenchError(f"{path}: is a folder; give a predictions file (a run's is {path / 'predictions.csv'})")
    header, rows = csv_rows(path)
    if not any(header):
        raise SerbenchError(f"{path}: empty file (expected a CSV header: {', '.join(REQUIRED)}, ...)")
    if any("\x00" in name for name in header):
        raise SerbenchError(f"{path}:1: holds NUL bytes: a binary file, not a CSV table")
    twice = sorted({c for c in header if c and header.count(c) > 1})
    if twice:
        raise SerbenchError(f"{path}:1: column {twice[0]!r} appears twice in the header")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        shown = ", ".join(repr(c[:40]) for c in header[:8]) + (", ..." if len(header) > 8 else "")
        raise SerbenchError(f"{path}:1: no {missing[0]!r} column (the header has: {shown}; "
                            f"required: {', '.join(REQUIRED)}; optional: {', '.join(OPTIONAL)}, prob_<class>)")
    has = {c: c in header for c in OPTIONAL}
    columns: dict[str, list] = {c: [] for c in ("fold", "seed", "utterance_id", "speaker", "label", "prediction")}
    extra = (["gender"] if has["gender"] else []) + [c for c in header if c.startswith(PROB_PREFIX) and len(c) > len(PROB_PREFIX)]
    columns.update({c: [] for c in extra})  # per-gender scores and calibration (serbench.report.beyond)
    first_line: dict[tuple[str, int, str], int] = {}
    for line, row in rows:
        where = f"{path}:{line}"
        if any("\x00" in value for value in row.values()):
            raise SerbenchError(f"{where}: holds a NUL byte: a binary file, not a CSV table")
        for column in REQUIRED + tuple(c for c in ("fold", "speaker") if has[c]):
            if not row[column]:
                hint = " (leave the column out when speakers are unknown)" if column == "speaker" else ""
                raise SerbenchError(f"{where}: empty {column}{hint}")
        fold = row["fold"] if has["fold"] else ONE_FOLD
        seed = _seed(row["seed"], where) if has["seed"] else ONE_SEED
        key = (fold, seed, row["utterance_id"])
        if key in first_line:
            raise SerbenchError(f"{where}: utterance {key[2]!r} of fold {fold!r} seed {seed} is already on line "
                                f"{first_line[key]} (one prediction per utterance and (fold, seed) job)")
        first_line[key] = line
        columns["fold"].append(fold)
        columns["seed"].append(seed)
        columns["utterance_id"].append(row["utterance_id"])
        columns["speaker"].append(row["speaker"] if has["speaker"] else row["utterance_id"])
        columns["label"].append(row["label"])
        columns["prediction"].append(row["prediction"])
        for column in extra:
            columns[column].append(gender(row[column], where) or "" if column == "gender" else _probability(row[column], column, where))
    if not first_line:
        raise SerbenchError(f"{path}: a header and no rows: nothing to score")
    notes = []
    if not has["fold"]:
        notes.append(f"no fold column: one fold ({ONE_FOLD!r}), so no Student-t interval over folds")
    if not has["seed"]:
        notes.append(f"no seed column: one seed ({ONE_SEED})")
    frame = pd.DataFrame(columns)
    frame["seed"] = frame["seed"].astype(np.int64)
    return Table(frame, header, list(first_line.values()), notes)


def _probability(text: str, column: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0 + 1e-6:  # (NaN fails too)
        raise SerbenchError(f"{where}: {column} {text!r} is not a probability in [0, 1]")
    return value


def _seed(text: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SerbenchError(f"{where}: seed {text!r} is not an integer") from None


def _run_result(path: Path) -> dict | None:
    """The serbench result written beside a run's ``predictions.csv`` (another tool's
    ``result.json`` is not ours to read)."""
    folder = RunDir(path.parent)
    beside = folder.result
    if path != folder.predictions or not beside.is_file():
        return None
    try:
        data = read_json(beside)
    except SerbenchError:  # not JSON: not a serbench result either
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return None
    recorded = data.get("predictions_sha256")
    if recorded is not None and sha256_of(path.read_bytes()) != recorded:
        raise SerbenchError(f"{path}: edited since its run wrote it (its sha256 differs from the one in {beside.name}): "
                            "it would be scored as that run; rerun serbench finish on the run, or score a copy kept "
                            "outside the run directory")
    return data


def choose_classes(path: Path, table: Table, given: list[str] | None, run: dict | None) -> tuple[list[str], str]:
    """The class order and where it came from: ``--classes``, else the run's result.json,
    else the file's ``prob_<class>`` columns (a run writes them in its class order), else the
    sorted union of labels and predictions. Every label and prediction must be one of them."""
    probs = [c[len(PROB_PREFIX):] for c in table.columns if c.startswith(PROB_PREFIX) and len(c) > len(PROB_PREFIX)]
    seen = set(table.frame["label"]) | set(table.frame["prediction"])
    if given is not None:
        classes, source = given, "--classes"
    elif run is not None and isinstance(run.get("classes"), list) and all(isinstance(c, str) for c in run["classes"]):
        classes, source = run["classes"], f"the run's {RunDir(path.parent).result}"
    elif probs and seen <= set(probs):
        classes, source = probs, "the prob_<class> columns"
    else:
        return sorted(seen), "the sorted union of labels and predictions (--classes sets the order or adds a class)"
    known = set(classes)
    for column in ("label", "prediction"):
        outside = ~table.frame[column].isin(known)
        if outside.any():
            row = int(np.argmax(outside.to_numpy()))
            raise SerbenchError(f"{path}:{table.lines[row]}: {column} {table.frame[column].iloc[row]!r} is not one of the "
                                f"classes from {source} ({', '.join(classes)})")
    return list(classes), source


def job_records(frame: pd.DataFrame, classes: list[str]) -> list[dict]:
    """One record per (fold, seed) job, in the file's order, scored as a run scores a job."""
    index = {c: k for k, c in enumerate(classes)}
    records = []
    for (fold, seed), part in frame.groupby(["fold", "seed"], sort=False):
        metrics = score(part["label"].map(index).to_numpy(), part["prediction"].map(index).to_numpy(), classes)
        records.append({"fold": fold, "seed": int(seed), "n_test": len(part),
                        "metrics": {m: metrics[m] for m in METRICS}})
    return records


def _speakers(table: Table, run: dict | None) -> dict:
    """What is known of the speaker column, as a result.json's ``speakers`` record: a run's
    own record when the file is a run's (a run may have written pseudo-speakers there)."""
    recorded = run.get("speakers") if run is not None and isinstance(run.get("speakers"), dict) else {}
    if "speaker" not in table.columns:
        return {"source": "unknown: no speaker column, one pseudo-speaker per utterance", "known": False}
    known = recorded.get("known") is not False
    speakers = {"source": recorded.get("source", "the file's speaker column" if known else "unknown"), "known": known}
    if "speaker_dependent" in recorded:
        speakers["speaker_dependent"] = recorded["speaker_dependent"]
    return speakers


def _unknown_speakers_note(summary: dict) -> str:
    """What pseudo-speakers cost the interval: nothing when it resamples whole folds (if
    speakers are nested in them), a too-narrow interval when it resamples utterances."""
    entry = summary[METRICS[0]]
    design = entry.get("cluster") or entry.get("bootstrap") or {}
    return FOLDS_WITHOUT_SPEAKERS_NOTE if design.get("unit") == "fold" else SPEAKERS_UNKNOWN_NOTE


def score_file(path: str | Path, classes: list[str] | None = None, fairness_threshold: float | None = None) -> dict:
    """One predictions file scored like a run: ``{file, classes, summary, folds, overall,
    speakers, groups, calibration, notes}``, all in the structure of a ``result.json``
    (``groups.gender`` needs a ``gender`` column, ``calibration`` the ``prob_<class>`` columns;
    temperature scaling needs a run's dev predictions and is reported by runs only). The
    fairness threshold is ``fairness_threshold``, else the run's own, else audEERING's."""
    path = Path(path)
    if fairness_threshold is not None and not 0.0 <= fairness_threshold <= 1.0:  # (NaN fails too)
        raise SerbenchError(f"--fairness-threshold {fairness_threshold}: expected a difference of proportions in [0, 1] "
                            f"(audEERING's is {FAIRNESS_THRESHOLD})")
    if not path.is_dir():  # pred_<dim> / true_<dim> columns: a dimensional table (serbench.report.dimension_score)
        from serbench.report.dimension_score import dimensions_in, score_table

        header, rows = csv_rows(path)
        if dimensions_in(header) and "prediction" not in header:
            run = _run_result(path)  # a run's own table: refused when edited since the run wrote it
            threshold = fairness_threshold if fairness_threshold is not None else _run_threshold(run)
            return score_table(path, header, rows, threshold)
    table = read_predictions(path)
    run = _run_result(path)
    chosen, source = choose_classes(path, table, classes, run)
    frame = table.frame
    speakers = _speakers(table, run)
    records = job_records(frame, chosen)
    summary = summarize_run(records, frame, chosen, speakers_known=speakers["known"])
    threshold = fairness_threshold if fairness_threshold is not None else _run_threshold(run)
    beyond = score_beyond(frame, chosen, speakers["known"], summary,
                          {"fairness_threshold": threshold, **_run_per_class_thresholds(run)}, where=str(path))
    notes = [f"classes from {source}: {', '.join(chosen)}", *table.notes]
    if not speakers["known"]:
        notes.append(_unknown_speakers_note(summary))
    if speakers.get("speaker_dependent"):
        notes.append("the run's protocol is speaker-dependent: the same speakers are in train and test")
    absent = [c for c in chosen if c not in set(frame["label"])]
    if absent:
        notes.append(f"no test utterance of {', '.join(absent)}: UA averages the other classes' recall")
    ignored = [c or "(unnamed)" for c in table.columns if c not in REQUIRED + OPTIONAL and not c.startswith(PROB_PREFIX)]
    if ignored:
        notes.append(f"ignored columns: {', '.join(ignored)}")
    return {
        "file": str(path),
        "classes": chosen,
        "summary": summary,
        "folds": records,
        "overall": overall(frame, chosen),
        "speakers": {**speakers, "count": int(frame["speaker"].nunique())},
        **beyond,
        "notes": notes,
    }


def score_files(paths: Sequence[str | Path], classes: list[str] | None = None,
                fairness_threshold: float | None = None) -> list[dict]:
    """Each file scored on its own, in the order given."""
    return [score_file(p, classes, fairness_threshold) for p in paths]


def _run_per_class_thresholds(run: dict | None) -> dict:
    """The per-class fairness thresholds a run's result was scored with (none: the defaults)."""
    gender = ((run or {}).get("groups") or {}).get("gender") if isinstance((run or {}).get("groups"), dict) else None
    found = ((gender or {}).get("fairness") or {}).get("per_class") if isinstance(gender, dict) else None
    out = {}
    for key, option in (("recall_threshold", "fairness_recall_per_class"),
                        ("precision_threshold", "fairness_precision_per_class")):
        value = found.get(key) if isinstance(found, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[option] = float(value)
    return out


def _run_threshold(run: dict | None) -> float:
    """The fairness threshold a run's result was scored with, so that its own predictions.csv
    reproduces its groups section; audEERING's otherwise."""
    gender = ((run or {}).get("groups") or {}).get("gender") if isinstance((run or {}).get("groups"), dict) else None
    found = ((gender or {}).get("fairness") or {}).get("threshold") if isinstance(gender, dict) else None
    return float(found) if isinstance(found, (int, float)) and not isinstance(found, bool) else FAIRNESS_THRESHOLD
