"""``csv``: any corpus described by one CSV file.

Columns: ``path,label`` and optionally ``speaker,gender,fold,split,valence,arousal,dominance,
transcript``. Folds come from ``fold`` (leave-one-fold-out, dev taken from the other folds)
or from ``split`` (train / dev / test, one fold). Relative paths start at the CSV's folder.
An utterance without a speaker counts as a speaker of its own in the bootstrap; with no
speaker at all, the result records the speakers as unknown. A fold whose train and test share
a speaker is refused unless ``speaker_dependent=true`` declares that design (the result and
its tables then say so). ``gender`` is
F or M (female / male, any case; empty: unknown); another value is refused naming its line
(version 2: before, ``female`` counted as unknown and switched gender conditioning off).
Labels that differ only by case (``A`` and ``a``) are refused naming both lines, never merged:
no rule says which spelling is the class. A field holding a line break or NUL (possible in a
quoted CSV field) is refused naming its line.
"""

from __future__ import annotations

from pathlib import Path

from serbench.api import Param, ProtocolMeta, Spec, hookimpl
from serbench.api.errors import SerbenchError
from serbench.api.folds import DEV_MODES, split_off_dev
from serbench.api.protocol import SPEAKERS_UNKNOWN, Fold, Protocol, Utterance, gender
from serbench.api.textfiles import csv_rows

SPLITS = ("train", "dev", "test")


def _scaled(value: str, lo: float, hi: float, where: str, column: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise SerbenchError(f"{where}: {column} {value!r} is not a number") from None
    if not lo <= x <= hi:
        raise SerbenchError(f"{where}: {column} {x} is outside [{lo}, {hi}] (set protocol.attribute_min/max)")
    return (x - lo) / (hi - lo)


def read_rows(path: Path, attribute_min: float, attribute_max: float) -> list[tuple[Utterance, dict]]:
    rows, seen, spelled = [], {}, {}  # spelled: case-folded label -> (label as first written, its line)
    header, records = csv_rows(path)
    missing = [c for c in ("path", "label") if c not in header]
    if missing:
        raise SerbenchError(f"{path}:1: header lacks {', '.join(missing)}")
    if "fold" in header and "split" in header:
        raise SerbenchError(f"{path}:1: give either a fold or a split column, not both")
    if "fold" not in header and "split" not in header:
        raise SerbenchError(f"{path}:1: needs a fold column (cross-validation) or a split column (train/dev/test)")
    for line, record in records:
        where = f"{path}:{line}"
        for column in ("path", "label", "fold", "split"):
            if column in header and not record[column]:
                raise SerbenchError(f"{where}: empty {column}")
        audio = Path(record["path"])
        audio = audio if audio.is_absolute() else path.parent / audio
        if not audio.is_file():
            raise SerbenchError(f"{audio}: audio file missing (listed at {where})")
        uid = record.get("id") or record["path"]
        if uid in seen:
            raise SerbenchError(f"{where}: duplicate utterance {uid} (first on line {seen[uid]})")
        seen[uid] = line
        first, first_line = spelled.setdefault(record["label"].casefold(), (record["label"], line))
        if first != record["label"]:
            raise SerbenchError(f"{where}: label {record['label']!r} differs from {first!r} (line {first_line}) only by "
                                "case; write each class one way (serbench does not guess which is meant)")
        attributes = {
            k: _scaled(record[k], attribute_min, attribute_max, where, k)
            for k in ("valence", "arousal", "dominance") if record.get(k)
        }
        if "split" in header and record["split"] not in SPLITS:
            raise SerbenchError(f"{where}: split {record['split']!r} is not one of {', '.join(SPLITS)}")
        rows.append((
            Utterance(
                id=uid, path=audio, label=record["label"],
                speaker=record.get("speaker") or f"utt-{uid}",
                gender=gender(record.get("gender"), where),
                session=record.get("fold") or None,
                attributes=attributes,
                transcript=record.get("transcript") or None,
            ),
            record,
        ))
    if not rows:
        raise SerbenchError(f"{path}: no rows")
    return rows


def speaker_source(rows: list[tuple[Utterance, dict]]) -> str:
    """Where the speaker ids came from: the ``speaker`` column, or nowhere (every utterance its
    own pseudo-speaker), or the column with gaps (named, since the gaps count as speakers)."""
    missing = sum(1 for _, record in rows if not record.get("speaker"))
    if missing == len(rows):
        return SPEAKERS_UNKNOWN
    if missing:
        return f"corpus metadata ({missing} of {len(rows)} utterances without a speaker: one pseudo-speaker each)"
    return "corpus metadata"


def make_protocol(
    data: Path | None, classes: tuple, main_metric: str, dev: str, dev_fraction: float, seed: int,
    attribute_min: float, attribute_max: float, speaker_dependent: bool = False,
) -> Protocol:
    if data is None:
        raise SerbenchError("csv needs --data FILE.csv")
    rows = read_rows(Path(data), attribute_min, attribute_max)
    utterances = [u for u, _ in rows]
    labels = list(classes) if classes else sorted({u.label for u in utterances})
    if "split" in rows[0][1]:
        parts = {s: tuple(u.id for u, r in rows if r["split"] == s) for s in SPLITS}
        folds = [Fold("1", parts["train"], parts["dev"], parts["test"])]
    else:
        folds = []
        for k in sorted({u.session for u in utterances}, key=lambda f: (len(f), f)):
            rest = [u for u in utterances if u.session != k]
            held = split_off_dev(rest, dev, dev_fraction, seed)
            folds.append(Fold(k, tuple(u.id for u in rest if u.id not in held),
                              tuple(u.id for u in rest if u.id in held),
                              tuple(u.id for u in utterances if u.session == k)))
    return Protocol(f"csv:{Path(data).name}", utterances, folds, labels, main_metric=main_metric,
                    speaker_source=speaker_source(rows), speaker_dependent=speaker_dependent)


@hookimpl
def register_protocols() -> list[Spec]:
    return [
        Spec(
            name="csv",
            factory=make_protocol,
            summary="any corpus from one CSV (path,label[,speaker,gender,fold|split,valence,...])",
            params=(
                Param("classes", tuple, (), "class order (default: sorted labels found)", item=str),
                Param("main_metric", str, "ua", "metric for model selection", ("ua", "wa", "macro_f1")),
                Param("dev", str, "stratified", "dev split inside a fold's training part", DEV_MODES),
                Param("dev_fraction", float, 0.2, "dev share (dev=stratified)", bounds="(0, 1)"),
                Param("seed", int, 0, "seed of the dev split", bounds=">= 0"),
                Param("attribute_min", float, 1.0, "lowest value of the valence/arousal/dominance scale"),
                Param("attribute_max", float, 5.0, "highest value of that scale"),
                Param("speaker_dependent", bool, False, "the folds share speakers between train and test by "
                      "design (else such a fold is refused)"),
            ),
            version="2",
            meta=ProtocolMeta(data_key="csv"),
        )
    ]
