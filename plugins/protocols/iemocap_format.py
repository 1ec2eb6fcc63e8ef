"""Reading an IEMOCAP_full_release-style tree (shared by every protocol that uses the layout).

``SessionN/dialog/EmoEvaluation/<dialog>.txt`` holds utterance lines such as
``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]``;
everything else in those files (header, annotator lines, blanks) is not an utterance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from serbench.errors import SerbenchError

UTTERANCE_LINE = re.compile(
    r"^\[(?P<start>[\d.]+) - (?P<end>[\d.]+)\]\t(?P<id>Ses\d\d[FM]_\S+)\t(?P<label>\w+)\t"
    r"\[(?P<v>[\d.]+), (?P<a>[\d.]+), (?P<d>[\d.]+)\]\s*$"
)
TRANSCRIPT_LINE = re.compile(r"^(?P<id>Ses\d\d[FM]_\S+) \[[\d.]+-[\d.]+\]: ?(?P<text>.*)$")
SPEAKER_ID = re.compile(r"^Ses(?P<session>\d\d)[FM]_.*_(?P<gender>[FM])[^_]*$")


@dataclass(frozen=True)
class Evaluation:
    """One utterance line: raw label and valence / arousal / dominance on 1-5."""

    id: str
    dialog: str
    start: float
    end: float
    label: str
    vad: tuple[float, float, float]


def speaker_of(utterance_id: str) -> tuple[str, str]:
    """``("01M", "M")`` for ``Ses01F_impro01_M003``: session number plus the first letter of
    the id's last segment. Not the dialog prefix (``Ses01F``) and not a fixed character
    position, which dialog names like ``Ses03M_impro05a`` or ``Ses05M_script01_1b`` break."""
    match = SPEAKER_ID.match(utterance_id)
    if not match:
        raise SerbenchError(f"{utterance_id}: not an IEMOCAP utterance id (SesNN?_..._F000)")
    return match["session"] + match["gender"], match["gender"]


def read_evaluations(path: Path) -> list[Evaluation]:
    dialog = path.stem
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = UTTERANCE_LINE.match(line)
        if match:
            vad = (float(match["v"]), float(match["a"]), float(match["d"]))
            rows.append(
                Evaluation(match["id"], dialog, float(match["start"]), float(match["end"]), match["label"], vad)
            )
    return rows


def read_transcripts(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    found = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
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
