"""EmoBox's cross-corpus track (track 2): its published, fully balanced test sets.

EmoBox (Ma et al., Interspeech 2024) publishes ``data/track2/<NAME>_selected_balenced.jsonl``
(its spelling) for IEMOCAP, MELD, RAVDESS and SAVEE: 240 utterances each, 60 per class of
angry, happy, neutral and sad, balanced over speakers, relabelled with emotion2vec's help. A
record names its audio by a path of EmoBox's own making (``happy/Ses02F_impro03_F019.wav``,
``JK/sa09.wav``, ``audio/final_videos_testdia12_utt3.wav``) and gives ``label`` and
``speaker``; serbench finds the record's utterance in the dataset's EmoBox JSON lines (read by
the ``emobox`` protocol, so audio paths and ``audio_root`` work as there) by its key:

- iemocap, ravdess: ``<dataset>-<file stem>``; savee: ``savee-<folder>-<file stem>``;
- meld: ``meld-<stem>-<split>``, the split ``test`` when the stem starts with
  ``final_videos_test`` (that prefix removed), else any split whose record has the same
  speaker and label (two records of EmoBox's MELD, one in train and one in test, can share
  stem, speaker and label: such a record cannot be placed and is dropped, counted).

The test label is the balanced file's (its relabelling is the point of the set). What the
paper leaves open, serbench's own choices: the training side is whatever the experiment file
declares (the whole training corpus by default).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import PurePosixPath

from serbench.api.errors import SerbenchError
from serbench.api.protocol import Protocol, Utterance
from serbench.api.textfiles import numbered_lines, read_text

DATASETS = ("iemocap", "meld", "ravdess", "savee")
MELD_TEST_PREFIX = "final_videos_test"


def balanced_file(data) -> object:
    """Where EmoBox keeps a dataset's balanced set: ``data/track2/`` beside the dataset's folder."""
    return data.parent / "track2" / f"{data.name.upper()}_selected_balenced.jsonl"


def candidates(dataset: str, wav: str, keys: dict[str, Utterance]) -> list[str]:
    """The EmoBox keys a balanced record's file name can stand for (see the module's rules)."""
    name = PurePosixPath(wav)
    stem, folder = name.stem, name.parent.name
    if dataset == "savee":
        key = f"savee-{folder}-{stem}"
        return [key] if key in keys else []
    if dataset == "meld":
        if stem.startswith(MELD_TEST_PREFIX):
            key = f"meld-{stem.removeprefix(MELD_TEST_PREFIX)}-test"
            return [key] if key in keys else []
        return [k for k in (f"meld-{stem}-{split}" for split in ("train", "dev", "test")) if k in keys]
    key = f"{dataset}-{stem}"
    return [key] if key in keys else []


def balanced_set(protocol: Protocol, data, where: str) -> tuple[list[Utterance], int]:
    """The balanced test set's utterances (labels from the balanced file) and how many of its
    records could not be placed on exactly one EmoBox record (dropped)."""
    dataset = data.name.lower()
    if dataset not in DATASETS:
        raise SerbenchError(f"{where}: EmoBox publishes balanced test sets for {', '.join(DATASETS)} only, not "
                            f"{data.name!r}")
    path = balanced_file(data)
    if not path.is_file():
        raise SerbenchError(f"{path}: missing (EmoBox's data/track2 folder, beside {data.name}/); needed by {where}")
    found, unplaced = [], 0
    for number, line in numbered_lines(read_text(path)):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SerbenchError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or not all(isinstance(record.get(k), str) and record[k]
                                                   for k in ("wav_filename", "label", "speaker")):
            raise SerbenchError(f"{path}:{number}: expected an object with wav_filename, label and speaker")
        keys = candidates(dataset, record["wav_filename"], protocol.utterances)
        if len(keys) > 1:
            keys = [k for k in keys if protocol.utterances[k].speaker == record["speaker"]
                    and protocol.utterances[k].label.casefold() == record["label"].casefold()]
        if len(keys) != 1:
            unplaced += 1
            continue
        found.append(replace(protocol.utterances[keys[0]], label=record["label"], origin=f"{path}:{number}"))
    repeated = [k for k, n in Counter(u.id for u in found).items() if n > 1]
    if repeated:
        raise SerbenchError(f"{path}: utterance {repeated[0]} is listed twice")
    if not found:
        raise SerbenchError(f"{path}: no record matches an utterance of {data} (is it EmoBox's {dataset} folder?)")
    return found, unplaced
