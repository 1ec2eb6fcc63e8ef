"""A third-party serbench protocol: a corpus kept as folders, ``DATA/<speaker>/<label>/*.wav``.

Leave-one-speaker-out: fold k tests the k-th speaker (in sorted order) and selects the model
on the next one (the first, after the last); the others train. So no speaker is in two splits
of a fold, and every fold needs at least three speakers. Classes are the label folders' names,
sorted. Speaker and label names become fold names and utterance ids, so they must be plain
names (letters, digits, ``.``, ``_``, ``-``); anything else is refused naming the folder.

    pip install ./examples/serbench-folders
    serbench config set data.folders /path/to/corpus     # or --data /path/to/corpus
    serbench run --upstream fbank --downstream superb --protocol folders
"""

from __future__ import annotations

import re
from pathlib import Path

from serbench.api import ProtocolMeta, SerbenchError, Spec, hookimpl
from serbench.api.protocol import Fold, Protocol, Utterance

PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
AUDIO = {".wav", ".flac"}


def _plain(folder: Path) -> str:
    if not PLAIN.fullmatch(folder.name):
        raise SerbenchError(f"{folder}: a speaker or label folder's name must be letters, digits, '.', '_' or '-'")
    return folder.name


def folders(data: Path | None) -> Protocol:
    if data is None or not data.is_dir():
        raise SerbenchError(f"protocol folders: --data {data}: expected a folder of <speaker>/<label>/*.wav")
    utterances = []
    for speaker_dir in sorted(p for p in data.iterdir() if p.is_dir()):
        speaker = _plain(speaker_dir)
        for label_dir in sorted(p for p in speaker_dir.iterdir() if p.is_dir()):
            label = _plain(label_dir)
            for audio in sorted(p for p in label_dir.iterdir() if p.suffix.lower() in AUDIO):
                utterances.append(Utterance(id=f"{speaker}_{label}_{_plain(audio.with_suffix(''))}", path=audio,
                                            label=label, speaker=speaker))
    speakers = sorted({u.speaker for u in utterances})
    if len(speakers) < 3:
        raise SerbenchError(f"protocol folders: {data}: {len(speakers)} speaker folders with audio; "
                            "leave-one-speaker-out with a dev speaker needs at least 3")
    folds = []
    for k, test in enumerate(speakers):
        dev = speakers[(k + 1) % len(speakers)]
        folds.append(Fold(name=test, train=[u.id for u in utterances if u.speaker not in (test, dev)],
                          dev=[u.id for u in utterances if u.speaker == dev],
                          test=[u.id for u in utterances if u.speaker == test]))
    return Protocol(name="folders", utterances=utterances, folds=folds,
                    classes=sorted({u.label for u in utterances}), main_metric="ua")


@hookimpl
def register_protocols():
    return [Spec(name="folders", factory=folders, summary="a corpus as speaker/label/*.wav folders, leave-one-speaker-out "
                 "(example plugin)", meta=ProtocolMeta(data_key="folders", test_split="test speaker"))]
