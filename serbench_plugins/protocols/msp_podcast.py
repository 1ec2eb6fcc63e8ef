"""``msp_podcast``: MSP-Podcast's eight-class task on its official partitions.

``Labels/labels_consensus.csv`` (FileName, EmoClass, EmoAct, EmoVal, EmoDom, SpkrID, Gender,
Split_Set), audio in ``Audios/``, transcripts in ``Transcripts/<stem>.txt`` when present.
X (no agreement) and O (other) are outside the categorical task. Under ``--task dimensional``
(the ``task`` parameter, which the run sets from ``--task``) they are kept: their arousal,
valence and dominance were rated like every other row's, and the challenge's attribute track
scores every test utterance. Their labels are then ``no_agreement`` and ``other``, listed after
the eight classes (a predictions table names every label among the result's classes; a
multitask method's classifier, sap_gap's, sees them as two more classes: serbench's own
choice). Version 3: before, a dimensional run dropped them. ``SpkrID`` ``Unknown`` becomes a
speaker of its own per utterance, so the speaker bootstrap does not lump strangers together.
``Gender`` is read as F / M (Female / Male, any case) or unknown; another value is refused
naming its line (version 2: before, a value other than Female / Male counted as unknown).
``rater_labels=true`` also reads ``Labels/labels_detailed.csv``: each utterance's raters' primary
emotions as its label distribution (soft labels; :mod:`serbench_plugins.protocols.msp_podcast_raters`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from serbench.api import Param, ProtocolMeta, Spec, hookimpl
from serbench.api.errors import SerbenchError
from serbench.api.folds import speaker_disjoint_holdout
from serbench.api.protocol import Fold, Protocol, Utterance, gender
from serbench.api.textfiles import csv_rows, read_text
from serbench_plugins.protocols.msp_podcast_raters import distributions

CODES = {"A": "angry", "S": "sad", "H": "happy", "U": "surprise", "F": "fear", "D": "disgust", "C": "contempt", "N": "neutral"}
OUTSIDE_TASK = {"X", "O"}
ATTRIBUTE_ONLY = {"X": "no_agreement", "O": "other"}  # kept under --task dimensional, with these labels
TASKS = ("categorical", "dimensional")
PARTITIONS = {"Train", "Development", "Test1", "Test2", "Test3"}
COLUMNS = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set")


def _attribute(value: str, where: str, column: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise SerbenchError(f"{where}: {column} {value!r} is not a number") from None
    if not 1.0 <= x <= 7.0:
        raise SerbenchError(f"{where}: {column} {x} is outside the 1-7 scale")
    return (x - 1.0) / 6.0


def read_labels(root: Path, task: str = "categorical") -> list[tuple[Utterance, str]]:
    """(utterance, Split_Set) for every row of the task's classes; for the dimensional task also
    the X and O rows (labelled as :data:`ATTRIBUTE_ONLY` says)."""
    labels = root / "Labels" / "labels_consensus.csv"
    if not labels.is_file():
        raise SerbenchError(f"{labels}: missing (expected an MSP-Podcast folder at {root})")
    rows = []
    seen: dict[str, int] = {}
    header, records = csv_rows(labels)
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise SerbenchError(f"{labels}:1: header lacks {', '.join(missing)}")
    for line, record in records:
        where = f"{labels}:{line}"
        name, code, split = record["FileName"], record["EmoClass"], record["Split_Set"]
        if name in seen:
            raise SerbenchError(f"{where}: duplicate FileName {name} (first on line {seen[name]})")
        seen[name] = line
        if split not in PARTITIONS:
            raise SerbenchError(f"{where}: unknown Split_Set {split!r} (known: {', '.join(sorted(PARTITIONS))})")
        if code in OUTSIDE_TASK and task != "dimensional":
            continue
        if code not in CODES and code not in OUTSIDE_TASK:
            raise SerbenchError(f"{where}: unknown EmoClass {code!r} (known: {', '.join(CODES)}, X, O)")
        audio = root / "Audios" / name
        if not audio.is_file():
            raise SerbenchError(f"{audio}: audio file missing (listed at {where})")
        stem = Path(name).stem
        transcript = root / "Transcripts" / f"{stem}.txt"
        speaker = record["SpkrID"].strip()
        rows.append((
            Utterance(
                id=stem,
                path=audio,
                label=CODES.get(code) or ATTRIBUTE_ONLY[code],
                speaker=f"unknown-{stem}" if speaker.lower() == "unknown" else speaker,
                gender=gender(record["Gender"], where),
                attributes={
                    "valence": _attribute(record["EmoVal"], where, "EmoVal"),
                    "arousal": _attribute(record["EmoAct"], where, "EmoAct"),
                    "dominance": _attribute(record["EmoDom"], where, "EmoDom"),
                },
                transcript=read_text(transcript).strip() if transcript.is_file() else None,
            ),
            split,
        ))
    return rows


def make_protocol(data: Path | None, test_set: str, dev_fraction: float, seed: int,
                  rater_labels: bool = False, task: str = "categorical") -> Protocol:
    if data is None:
        raise SerbenchError("msp_podcast needs --data PATH (the MSP-Podcast folder)")
    rows = read_labels(Path(data), task)
    classes = list(CODES.values()) + (list(ATTRIBUTE_ONLY.values()) if task == "dimensional" else [])
    if rater_labels:  # off by default: the corpus (and its digest) stays as it was read before soft labels
        shares = distributions(Path(data), list(CODES.values()))
        rows = [(replace(u, distribution=shares.get(u.id, {})), split) for u, split in rows]
    by_split: dict[str, list[Utterance]] = {}
    for utterance, split in rows:
        by_split.setdefault(split, []).append(utterance)
    train = by_split.get("Train", [])
    test = by_split.get(test_set, [])
    if not train or not test:
        raise SerbenchError(f"{data}: no {'Train' if not train else test_set} rows in labels_consensus.csv")
    if test_set == "Development":  # the public dev set is the test: carve dev out of train
        held = speaker_disjoint_holdout(train, dev_fraction, seed)
        dev = [u for u in train if u.id in held]
        train = [u for u in train if u.id not in held]
    else:
        dev = by_split.get("Development", [])
    fold = Fold(test_set, tuple(u.id for u in train), tuple(u.id for u in dev), tuple(u.id for u in test))
    return Protocol("msp_podcast", train + dev + test, [fold], classes, main_metric="macro_f1",
                    speaker_source="labels_consensus.csv SpkrID (Unknown: one pseudo-speaker per utterance)")


@hookimpl
def register_protocols() -> list[Spec]:
    return [
        Spec(
            name="msp_podcast",
            factory=make_protocol,
            summary="MSP-Podcast, 8 classes, Train / Development / Test1, macro-F1",
            params=(
                Param("test_set", str, "Test1", "partition scored as test", ("Test1", "Test2", "Development")),
                Param("dev_fraction", float, 0.1, "with test_set=Development: share of Train held out as dev, by speaker", bounds="(0, 1)"),
                Param("seed", int, 0, "seed of that dev split", bounds=">= 0"),
                Param("rater_labels", bool, False, "read Labels/labels_detailed.csv: the raters' primary emotions as "
                      "each utterance's label distribution (soft labels)"),
                Param("task", str, "categorical", "set by --task: dimensional keeps the X and O rows (their "
                      "attributes are rated)", TASKS),
            ),
            version="3",
            citation="Lotfian & Busso, IEEE Trans. Affective Computing 10(4), 2019, doi:10.1109/TAFFC.2017.2736999",
            meta=ProtocolMeta(data_key="msp_podcast", default_loss="weighted_ce", test_split="{test_set}",
                              folds=1),
        )
    ]
