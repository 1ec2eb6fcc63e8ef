"""IEMOCAP's per-evaluator categorical lines as rater distributions (soft labels).

Below each utterance line of ``SessionN/dialog/EmoEvaluation/<dialog>.txt``, one line per
rater gives the categories that rater chose, e.g. ``C-E2:<TAB>Frustration; Anger;<TAB>()``:
``C-E1`` ... ``C-E4`` are the external evaluators, ``C-F1`` / ``C-M1`` the actors' own
assessments. The released majority label (``ang`` on the utterance line) comes from the
external evaluators, so the distribution does too: each external evaluator's every chosen
category is one vote (a rater who chose two categories gives each a vote), the votes are
mapped to the protocol's classes (``Excited`` joins ``happy`` when ``exc`` is merged) and the
votes for other categories (frustration, surprise, ...) are dropped before the shares are
taken. These three readings are serbench's choices; the corpus documents only the lines.

Every categorical line must parse and name known categories: a reader that skipped what it
did not understand would change the soft labels silently.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

from serbench.api import iemocap_format as fmt
from serbench.api.errors import SerbenchError
from serbench.api.protocol import Utterance
from serbench.api.soft_labels import from_votes
from serbench.api.textfiles import numbered_lines, read_text

RATER_LINE = re.compile(r"^C-(?P<rater>[EFM]\d+):\t(?P<categories>[^\t]*)(?:\t.*)?$")
CATEGORIES = {"neutral": "neu", "happiness": "hap", "excited": "exc", "anger": "ang", "sadness": "sad",
              "frustration": "fru", "surprise": "sur", "fear": "fea", "disgust": "dis", "other": "oth"}


def read_ratings(path: Path) -> dict[str, list[tuple[str, str]]]:
    """``{utterance id: [(rater, raw label code), ...]}``: every category of every ``C-`` line,
    attributed to the utterance line above it."""
    ratings: dict[str, list[tuple[str, str]]] = {}
    current = None
    for number, line in numbered_lines(read_text(path, errors="replace")):
        where = f"{path}:{number}"
        if line.startswith("["):
            match = fmt.UTTERANCE_LINE.match(line)
            current = match["id"] if match else None  # read_evaluations names a line that does not parse
            continue
        if not line.startswith("C-"):
            continue
        match = RATER_LINE.match(line)
        if not match:
            raise SerbenchError(f"{where}: cannot parse evaluator line {line[:80]!r} (expected C-E1:<TAB>Category;<TAB>(...))")
        if current is None:
            raise SerbenchError(f"{where}: evaluator line before any utterance line")
        for category in (c.strip() for c in match["categories"].split(";")):
            if not category:
                continue
            if category.casefold() not in CATEGORIES:
                raise SerbenchError(f"{where}: unknown category {category!r} (known: "
                                    f"{', '.join(c.capitalize() for c in CATEGORIES)})")
            ratings.setdefault(current, []).append((match["rater"], CATEGORIES[category.casefold()]))
    return ratings


def distribution(ratings: list[tuple[str, str]], label_map: dict[str, str], classes: list[str]) -> dict[str, float]:
    """The external evaluators' (``E``) votes as shares over ``classes``."""
    votes = Counter(label_map[code] for rater, code in ratings if rater.startswith("E") and code in label_map)
    return from_votes(votes, classes)


def attach(root: Path, utterances: list[Utterance], label_map: dict[str, str], classes: list[str]) -> list[Utterance]:
    """``utterances`` with their rater distributions (empty for an utterance without external
    evaluator votes on the protocol's classes)."""
    ratings: dict[str, list[tuple[str, str]]] = {}
    for session in fmt.SESSIONS:
        for path in fmt.evaluation_files(root, session):
            ratings.update(read_ratings(path))
    return [replace(u, distribution=distribution(ratings.get(u.id, []), label_map, classes)) for u in utterances]
