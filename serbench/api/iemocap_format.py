"""Reading an IEMOCAP_full_release-style tree (shared by every protocol that uses the layout).

``SessionN/dialog/EmoEvaluation/<dialog>.txt`` holds utterance lines such as
``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]``;
the header, annotator lines (``C-E2:``, ``A-E3:``) and blank lines are not utterances.
Everything that looks like an utterance line must parse, and every label code must be
known: a reader that skipped what it did not understand would change the benchmark silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from serbench.api.errors import SerbenchError
from serbench.api.protocol import Utterance
from serbench.api.textfiles import numbered_lines, read_text

UTTERANCE_LINE = re.compile(
    r"^\[(?P<start>\d+(?:\.\d+)?) - (?P<end>\d+(?:\.\d+)?)\]\t(?P<id>Ses\d\d[FM]_\S+)\t(?P<label>\w+)\t"
    r"\[(?P<v>\d+(?:\.\d+)?), (?P<a>\d+(?:\.\d+)?), (?P<d>\d+(?:\.\d+)?)\]\s*$"
)
TRANSCRIPT_LINE = re.compile(r"^(?P<id>Ses\d\d[FM]_\S+) \[[\d.]+-[\d.]+\]: ?(?P<text>.*)$")
SPEAKER_ID = re.compile(r"^Ses(?P<session>\d\d)[FM]_.*_(?P<gender>[FM])[^_]*$")
RAW_LABELS = ("neu", "hap", "exc", "ang", "sad", "fru", "sur", "fea", "dis", "oth", "xxx")
SESSIONS = (1, 2, 3, 4, 5)
CLASSES = ["neutral", "happy", "angry", "sad"]


def label_map(merge_excited: bool = True) -> dict[str, str]:
    """The standard four classes; ``exc`` joins ``hap`` or, when not merged, is left out."""
    kept = {"neu": "neutral", "hap": "happy", "ang": "angry", "sad": "sad"}
    return {**kept, "exc": "happy"} if merge_excited else kept


@dataclass(frozen=True)
class Evaluation:
    """One utterance line: raw label and valence / arousal / dominance on 1-5."""

    id: str
    dialog: str
    start: float
    end: float
    label: str
    vad: tuple[float, float, float]
    source: str  # "file:line", for messages


def speaker_of(utterance_id: str) -> tuple[str, str]:
    """``("01M", "M")`` for ``Ses01F_impro01_M003``: session number plus the first letter of
    the id's last segment. Not the dialog prefix (``Ses01F``) and not a fixed character
    position, which dialog names like ``Ses03M_impro05a`` or ``Ses05M_script01_1b`` break."""
    match = SPEAKER_ID.match(utterance_id)
    if not match:
        raise SerbenchError(f"{utterance_id}: not an IEMOCAP utterance id (SesNN?_..._F000)")
    return match["session"] + match["gender"], match["gender"]


def read_evaluations(path: Path) -> list[Evaluation]:
    rows = []
    text = read_text(path, errors="replace")  # a byte-order mark is not part of the first line
    for number, line in numbered_lines(text):
        if not line.startswith("["):
            continue
        where = f"{path}:{number}"
        match = UTTERANCE_LINE.match(line)
        if not match:
            raise SerbenchError(f"{where}: cannot parse utterance line {line[:80]!r}")
        if match["label"] not in RAW_LABELS:
            raise SerbenchError(f"{where}: unknown label code {match['label']!r} (known: {', '.join(RAW_LABELS)})")
        vad = (float(match["v"]), float(match["a"]), float(match["d"]))
        rows.append(
            Evaluation(match["id"], path.stem, float(match["start"]), float(match["end"]), match["label"], vad, where)
        )
    return rows


def read_transcripts(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    found = {}
    for _, line in numbered_lines(read_text(path, errors="replace")):
        match = TRANSCRIPT_LINE.match(line.strip())
        if match:
            found[match["id"]] = match["text"].strip()
    return found


def evaluation_files(root: Path, session: int) -> list[Path]:
    """The dialog files directly in ``EmoEvaluation/`` (not Categorical/, Attribute/,
    Self-evaluation/, nor macOS ``._*`` files)."""
    folder = root / f"Session{session}" / "dialog" / "EmoEvaluation"
    if not folder.is_dir():
        raise SerbenchError(f"{folder}: missing (expected an IEMOCAP_full_release tree at {root})")
    return sorted(p for p in folder.glob("*.txt") if p.is_file() and not p.name.startswith("._"))


def wav_path(root: Path, session: int, row: Evaluation) -> Path:
    return root / f"Session{session}" / "sentences" / "wav" / row.dialog / f"{row.id}.wav"


def transcript_path(root: Path, session: int, dialog: str) -> Path:
    return root / f"Session{session}" / "dialog" / "transcriptions" / f"{dialog}.txt"


def read_corpus(root: Path, label_map: dict[str, str]) -> list[Utterance]:
    """Every utterance whose raw label ``label_map`` keeps, with speaker, gender, session,
    attributes scaled to [0, 1] and transcript. A duplicate id or a listed utterance without
    its wav file is an error that names the files."""
    if not root.is_dir():
        raise SerbenchError(f"{root}: not a directory (expected IEMOCAP_full_release)")
    seen: dict[str, str] = {}
    utterances = []
    for session in SESSIONS:
        for path in evaluation_files(root, session):
            rows = read_evaluations(path)
            texts = read_transcripts(transcript_path(root, session, path.stem)) if rows else {}
            for row in rows:
                if row.id in seen:
                    raise SerbenchError(f"{row.source}: duplicate utterance id {row.id} (first at {seen[row.id]})")
                seen[row.id] = row.source
                if row.label not in label_map:
                    continue
                audio = wav_path(root, session, row)
                if not audio.is_file():
                    raise SerbenchError(f"{audio}: audio file missing (listed at {row.source})")
                speaker, gender = speaker_of(row.id)
                utterances.append(
                    Utterance(
                        id=row.id,
                        path=audio,
                        label=label_map[row.label],
                        speaker=speaker,
                        gender=gender,
                        session=str(session),
                        attributes={k: (x - 1.0) / 4.0 for k, x in zip(("valence", "arousal", "dominance"), row.vad)},
                        transcript=texts.get(row.id),
                        duration=row.end - row.start,
                    )
                )
    return utterances
