"""The cross-corpus experiment file (TOML) read by the ``cross_corpus`` protocol.

Kept apart from the protocol itself so that what a user writes (and every way it can be wrong)
is checked in one place, each problem named as ``FILE [train NAME]: ...`` before any corpus is
read. The file declares the shared class set, one or more training corpora and one test corpus;
each corpus is read by a serbench protocol with that protocol's own options, and its labels are
mapped onto the shared classes by a table (inline, or a CSV file of ``label,class`` rows).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from serbench.api.errors import SerbenchError
from serbench.api.protocol import SAFE_NAME, case_clash
from serbench.api.textfiles import csv_rows, read_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the dependency list installs tomli there
    import tomli as tomllib

TOP_KEYS = ("classes", "train", "test")
ENTRY_KEYS = ("name", "protocol", "data", "options", "labels", "part", "balanced")
PARTS = ("all", "train", "dev", "test")  # which utterances of a corpus: all, or the union of its folds' split


@dataclass(frozen=True)
class CorpusEntry:
    """One corpus of the experiment: ``name`` tags its utterance and speaker ids (``name:id``),
    so two corpora never share a speaker or an id; ``labels`` maps its raw labels to the shared
    classes (None: its labels already are class names); ``balanced`` reads EmoBox's track-2
    balanced test set in place of the whole corpus."""

    role: str  # "train" or "test"
    name: str
    protocol: str
    data: Path | None
    options: dict = field(default_factory=dict)
    labels: dict[str, str] | None = None
    part: str = "all"
    balanced: bool = False
    where: str = ""  # FILE [train NAME], for messages


@dataclass(frozen=True)
class CrossCorpusSpec:
    path: Path
    classes: tuple[str, ...]
    train: tuple[CorpusEntry, ...]
    test: CorpusEntry


def read_spec(path: Path) -> CrossCorpusSpec:
    """The experiment file, every key checked (an unknown key is a typo, refused by name)."""
    path = Path(path)
    if not path.is_file():
        raise SerbenchError(f"{path}: not a file (cross_corpus needs --data EXPERIMENT.toml)")
    try:
        data = tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise SerbenchError(f"{path}: not valid TOML ({exc})") from None
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise SerbenchError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(TOP_KEYS)})")
    classes = data.get("classes")
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) and c for c in classes):
        raise SerbenchError(f"{path}: classes must list the shared class names (at least two), e.g. "
                            "classes = [\"angry\", \"happy\", \"neutral\", \"sad\"]")
    if len(set(classes)) < len(classes) or case_clash(classes):
        raise SerbenchError(f"{path}: classes {classes} name one class twice (or two ways that differ only by case)")
    trains = data.get("train")
    if isinstance(trains, dict):
        trains = [trains]
    if not isinstance(trains, list) or not trains or not all(isinstance(t, dict) for t in trains):
        raise SerbenchError(f"{path}: needs at least one [[train]] table (a training corpus)")
    if not isinstance(data.get("test"), dict):
        raise SerbenchError(f"{path}: needs one [test] table (the test corpus)")
    entries = [_entry(path, "train", t, k) for k, t in enumerate(trains, start=1)]
    test = _entry(path, "test", data["test"], 1)
    names = [e.name for e in entries] + [test.name]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice:
        raise SerbenchError(f"{path}: corpus name {twice!r} is used twice; each corpus needs its own name "
                            "(it prefixes that corpus's utterance and speaker ids)")
    return CrossCorpusSpec(path, tuple(classes), tuple(entries), test)


def _entry(path: Path, role: str, table: dict, number: int) -> CorpusEntry:
    label = f"{path} [{role}{'' if role == 'test' else f' #{number}'}]"
    unknown = [k for k in table if k not in ENTRY_KEYS]
    if unknown:
        raise SerbenchError(f"{label}: unknown key {unknown[0]!r} (known: {', '.join(ENTRY_KEYS)})")
    protocol = table.get("protocol")
    if not isinstance(protocol, str) or not protocol:
        raise SerbenchError(f"{label}: protocol = \"NAME\" is missing (any protocol in 'serbench list protocols')")
    if protocol == "cross_corpus":
        raise SerbenchError(f"{label}: a cross_corpus experiment cannot contain another one")
    default = Path(table["data"]).stem if isinstance(table.get("data"), str) and table["data"].strip() else protocol
    name = table.get("name", default)  # by default the corpus's file or folder name (emobox: the dataset)
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise SerbenchError(f"{label}: name {name!r} must be letters, digits, '.', '_' or '-' (it tags ids)")
    where = f"{path} [{role} {name}]"
    data = table.get("data")
    if data is not None and (not isinstance(data, str) or not data.strip()):
        raise SerbenchError(f"{where}: data must be a path (relative paths start at {path.parent})")
    location = None if data is None else (Path(data).expanduser() if Path(data).expanduser().is_absolute()
                                          else path.parent / data)
    options = table.get("options", {})
    if not isinstance(options, dict):
        raise SerbenchError(f"{where}: options must be a table of that protocol's parameters")
    part = table.get("part", "all")
    if part not in PARTS:
        raise SerbenchError(f"{where}: part {part!r} is not one of {', '.join(PARTS)}")
    balanced = table.get("balanced", False)
    if not isinstance(balanced, bool):
        raise SerbenchError(f"{where}: balanced must be true or false")
    if balanced and (role != "test" or protocol != "emobox" or part != "all"):
        raise SerbenchError(f"{where}: balanced = true reads EmoBox's track-2 test set: only for the [test] "
                            "corpus, with protocol = \"emobox\" and no part")
    return CorpusEntry(role, name, protocol, location, dict(options), _labels(path, where, table.get("labels")),
                       part, balanced, where)


def _labels(path: Path, where: str, labels: object) -> dict[str, str] | None:
    """A label table: inline ``{raw = "class"}``, or a CSV file (``label,class`` columns)."""
    if labels is None:
        return None
    if isinstance(labels, dict):
        if not all(isinstance(v, str) and v for v in labels.values()):
            raise SerbenchError(f"{where}: labels must map each raw label to a class name (text)")
        return dict(labels)
    if not isinstance(labels, str) or not labels.strip():
        raise SerbenchError(f"{where}: labels must be a table {{raw = \"class\"}} or a CSV file (label,class)")
    csv_path = Path(labels) if Path(labels).is_absolute() else path.parent / labels
    if not csv_path.is_file():
        raise SerbenchError(f"{csv_path}: label map missing (named in {where})")
    header, rows = csv_rows(csv_path)
    if header[:2] != ["label", "class"]:
        raise SerbenchError(f"{csv_path}:1: a label map's header is 'label,class'")
    found: dict[str, str] = {}
    for line, record in rows:
        if not record["label"] or not record["class"]:
            raise SerbenchError(f"{csv_path}:{line}: empty label or class")
        if record["label"] in found:
            raise SerbenchError(f"{csv_path}:{line}: label {record['label']!r} is mapped twice")
        found[record["label"]] = record["class"]
    return found
