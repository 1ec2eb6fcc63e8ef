"""MSP-Podcast's per-rater labels (``Labels/labels_detailed.csv``) as rater distributions.

One row per (file, rater). Two layouts are read: a ``FileName`` column with the rater's primary
emotion in ``EmoClass_Major`` (as Python loaders of the 1.x releases read it), or a
``FileName`` column followed by one field ``WORKER; Primary; secondary tags; A:x; V:y; D:z``
(as the 2024 release is described), the primary emotion being its second part. A primary
emotion spelled as one of the eight classes (``Angry``, ``Sad``, ``Happy``, ``Surprise``,
``Fear``, ``Disgust``, ``Contempt``, ``Neutral``, any case) is one vote; every other one (the
release holds many ``Other-...`` spellings) is a vote outside the task, dropped before the
shares are taken (serbench's reading, as for the consensus file's X and O rows).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from serbench.api.errors import SerbenchError
from serbench.api.soft_labels import from_votes
from serbench.api.textfiles import csv_rows

NAMES = {"angry": "angry", "sad": "sad", "happy": "happy", "surprise": "surprise", "fear": "fear",
         "disgust": "disgust", "contempt": "contempt", "neutral": "neutral"}


def read_votes(root: Path) -> dict[str, Counter]:
    """``{file stem: Counter(class -> votes)}`` from ``Labels/labels_detailed.csv``."""
    path = root / "Labels" / "labels_detailed.csv"
    if not path.is_file():
        raise SerbenchError(f"{path}: missing (-o protocol.rater_labels=true reads the per-rater labels there)")
    header, records = csv_rows(path)
    if "FileName" not in header or len(header) < 2:
        raise SerbenchError(f"{path}:1: header lacks FileName and a rating column (EmoClass_Major, or the "
                            "'worker; primary; ...' field)")
    column = "EmoClass_Major" if "EmoClass_Major" in header else header[header.index("FileName") + 1]
    votes: dict[str, Counter] = {}
    for line, record in records:
        name, rating = record["FileName"], record[column]
        if not name or not rating:
            raise SerbenchError(f"{path}:{line}: empty {'FileName' if not name else column}")
        if column != "EmoClass_Major":
            parts = [p.strip() for p in rating.split(";")]
            if len(parts) < 2:
                raise SerbenchError(f"{path}:{line}: rating {rating[:60]!r} is not 'worker; primary; ...'")
            rating = parts[1]
        counted = votes.setdefault(Path(name).stem, Counter())
        if rating.casefold() in NAMES:
            counted[NAMES[rating.casefold()]] += 1
    return votes


def distributions(root: Path, classes: list[str]) -> dict[str, dict[str, float]]:
    """``{file stem: {class: share}}`` for every file with a vote on the task's classes."""
    return {stem: found for stem, counts in read_votes(root).items() if (found := from_votes(counts, classes))}
