"""``emobox``: any corpus from EmoBox's split files (Ma et al., Interspeech 2024).

The data folder is one dataset's folder from EmoBox's ``data/``: ``<dataset>.jsonl`` (all
utterances; fields key, wav, emo, length, ...), ``label_map.json`` (raw emo -> class;
``label_dict.json`` in EmoBox's emovo folder) and
``fold_<k>/<dataset>_{train,test[,valid]}_fold_<k>.jsonl`` (EmoBox's older
``..._fold<k>.jsonl`` files and mer2023's extra ``test1``-``test3`` files are not read).
Relative ``wav`` paths resolve against ``audio_root`` (default: the data folder). Raw labels
match label_map.json case-insensitively (EmoBox's emodb map says ``Neutral``, its records
``neutral``). A record with ``start_time`` / ``end_time`` (seconds; EmoBox's pavoque lists
stretches of one long flac per speaking style) is that segment of its file (version 4): only its
frames are read (``int(seconds * rate)`` at both ends, as EmoBox's ``read_wav``) and cached as
its own audio; times that are not numbers, reversed, or past the file's end are refused with the
file and line.

Speakers (version 3): a record's own ``speaker`` / ``gender`` fields win; otherwise the
dataset's naming rule in :mod:`emobox_speakers` reads them from the key (EmoBox's records
carry none), or, for meld, m3ed and emozionalmente, the speaker column of EmoBox's
``data.seg.wrd.stm`` beside the JSON lines. A dataset with neither gets one pseudo-speaker per
utterance and ``speaker_source`` ``unknown``, so its statistics are labelled utterance-level. A
dataset whose EmoBox folds put one speaker in train and test is declared speaker-dependent.

A fold without a valid file gets a dev split from its train part: whole speakers when they are
known and the folds are speaker-independent, else a stratified share of utterances (logged).
A record's ``gender`` is read as in the csv protocol (F / M / female / male; version 2).
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

from serbench.api import Param, ProtocolMeta, Spec, hookimpl
from serbench.api.errors import SerbenchError
from serbench.api.folds import (
    speaker_disjoint_holdout,
    stratified_holdout,
)
from serbench.api.protocol import SPEAKERS_UNKNOWN, Fold, Protocol, Utterance, gender
from serbench.api.textfiles import check_one_line, numbered_lines, read_json, read_text
from serbench_plugins.protocols.emobox_speakers import NO_SPEAKER_IN_KEYS, RULES, STM_FILE, STM_SPEAKERS, SpeakerRule

log = logging.getLogger("serbench")
LABEL_FILES = ("label_map.json", "label_dict.json")  # EmoBox names emovo's map label_dict.json


def read_jsonl(path: Path) -> list[tuple[str, dict]]:
    """(``file:line``, record) pairs; a line that is not a JSON object names itself."""
    records = []
    for number, line in numbered_lines(read_text(path)):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SerbenchError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or "key" not in record:
            raise SerbenchError(f"{path}:{number}: expected an object with a 'key' field")
        for field in ("key", "emo", "speaker", "gender"):  # a JSON "\n" decodes to a line break
            if isinstance(record.get(field), str):
                check_one_line(record[field], f"{path}:{number}", field)
        records.append((f"{path}:{number}", record))
    return records


def read_label_map(data: Path) -> tuple[Path, dict[str, str]]:
    """(file, map from case-folded raw label to class): two raw labels that differ only by case
    but name different classes are refused, since a record's label could then mean either."""
    path = next((data / name for name in LABEL_FILES if (data / name).is_file()), data / LABEL_FILES[0])
    if not path.is_file():
        raise SerbenchError(f"{path}: missing (expected EmoBox split files in {data})")
    label_map = read_json(path)
    if not isinstance(label_map, dict) or not label_map or not all(isinstance(v, str) for v in label_map.values()):
        raise SerbenchError(f"{path}: expected a JSON object mapping each raw emo label to a class name")
    folded: dict[str, tuple[str, str]] = {}
    for raw, name in label_map.items():
        seen = folded.setdefault(raw.casefold(), (raw, name))
        if seen[1] != name:
            raise SerbenchError(f"{path}: labels {seen[0]!r} and {raw!r} differ only by case but map to different "
                                f"classes ({seen[1]!r}, {name!r}); keep one")
    return path, {raw: name for raw, (_, name) in folded.items()}


@dataclass(frozen=True)
class RecordReader:
    """Turns one dataset's JSON-lines records into utterances (labels, audio, speaker, gender)."""

    dataset: str
    labels: dict[str, str]  # case-folded raw label -> class
    label_file: str
    audio_root: Path
    rule: SpeakerRule | None
    stm_speakers: dict[str, str] | None = None  # key -> speaker, from EmoBox's data.seg.wrd.stm

    def speaker_and_gender(self, where: str, record: dict) -> tuple[str | None, str | None]:
        """The record's own speaker / gender, else what the dataset's naming rule reads from its key."""
        speaker, sex = record.get("speaker"), gender(record.get("gender"), where)
        if speaker is None and self.stm_speakers is not None:
            speaker = self.stm_speakers.get(str(record["key"]))
            if speaker is None:
                raise SerbenchError(f"{where}: key {record['key']!r} has no line in {STM_FILE}; is the stm file "
                                    "from this copy of EmoBox?")
        if self.rule is not None and (speaker is None or sex is None):
            key = str(record["key"])
            found = self.rule.read(key.removeprefix(f"{self.dataset}-"))
            if found is None:
                raise SerbenchError(f"{where}: key {key!r} does not follow {self.dataset}'s naming "
                                    f"({self.rule.source}); give the record a 'speaker' field or check the file")
            speaker = speaker if speaker is not None else found[0]
            sex = sex if sex is not None else found[1]
        return (str(speaker) if speaker is not None else None), sex

    def utterance(self, where: str, record: dict) -> tuple[Utterance, bool]:
        """The utterance and whether its speaker is real (False: a pseudo-speaker of its own)."""
        for field in ("wav", "emo"):
            if field not in record:
                raise SerbenchError(f"{where}: record {record['key']} has no {field!r} field")
        raw = str(record["emo"])
        if raw.casefold() not in self.labels:
            raise SerbenchError(f"{where}: label {raw!r} is not in {self.label_file} ({', '.join(sorted(self.labels))})")
        wav = Path(record["wav"])
        path = wav if wav.is_absolute() else self.audio_root / wav
        if not path.is_file():
            raise SerbenchError(f"{path}: audio file missing (listed at {where}); set -o protocol.audio_root=DIR")
        speaker, sex = self.speaker_and_gender(where, record)
        utterance = Utterance(
            id=str(record["key"]),
            path=path,
            label=self.labels[raw.casefold()],
            speaker=speaker if speaker is not None else f"utt-{record['key']}",
            gender=sex,
            duration=_duration(record.get("length"), where),
            **_segment(record, where),
            origin=where,
        )
        return utterance, speaker is not None


def _duration(value, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise SerbenchError(f"{where}: length {value!r} is not a duration in seconds")
    return float(value)


def _segment(record: dict, where: str) -> dict[str, float]:
    """``start`` / ``end`` of a record that is a stretch of its file (EmoBox's pavoque), else
    nothing: both times or neither, numbers of seconds, the start before the end."""
    if "start_time" not in record and "end_time" not in record:
        return {}
    times = {}
    for field, name in (("start_time", "start"), ("end_time", "end")):
        value = record.get(field)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SerbenchError(f"{where}: {field} {value!r} is not a number of seconds (a segment needs both "
                                "start_time and end_time)")
        times[name] = float(value)
    if not 0 <= times["start"] < times["end"]:
        raise SerbenchError(f"{where}: start_time {times['start']!r} and end_time {times['end']!r}: a segment "
                            "starts at 0 or later and ends after it starts")
    return times


def read_stm_speakers(path: Path) -> dict[str, str]:
    """Key -> speaker from EmoBox's ``data.seg.wrd.stm`` (``<key> <channel> <speaker> ...``)."""
    speakers = {}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 3:
            raise SerbenchError(f"{path}:{number}: expected '<key> <channel> <speaker> ...'")
        speakers[fields[0]] = fields[2]
    return speakers


def speaker_source(dataset: str, rule: SpeakerRule | None, stm: bool, from_records: int, known: int,
                   total: int) -> str:
    """Where the speaker ids came from, in words a result.json reader can check: ``unknown``
    as soon as one utterance has only a pseudo-speaker."""
    if known < total or not total:
        return SPEAKERS_UNKNOWN
    if from_records == total or (rule is None and not stm):
        return "corpus metadata"
    if stm:
        return f"emobox {STM_FILE} for {dataset}: its speaker column"
    return f"emobox rule for {dataset}: {rule.source}"


def make_protocol(data: Path | None, audio_root: str, dev_fraction: float, seed: int) -> Protocol:
    if data is None:
        raise SerbenchError("emobox needs --data PATH (one dataset's folder from EmoBox's data/)")
    data = Path(data)
    name = data.name
    index = data / f"{name}.jsonl"
    if not index.is_file():
        raise SerbenchError(f"{index}: missing (expected EmoBox split files in {data})")
    label_file, labels = read_label_map(data)
    classes = list(dict.fromkeys(labels.values()))
    root = Path(audio_root).expanduser() if audio_root else data
    rule = RULES.get(name.lower())
    stm = name.lower() in STM_SPEAKERS and (data / STM_FILE).is_file()
    reader = RecordReader(name.lower(), labels, label_file.name, root, rule,
                          read_stm_speakers(data / STM_FILE) if stm else None)
    utterances: dict[str, Utterance] = {}
    known = from_records = 0
    for where, record in read_jsonl(index):
        if str(record["key"]) in utterances:
            raise SerbenchError(f"{where}: duplicate key {record['key']}")
        utterance, real = reader.utterance(where, record)
        utterances[utterance.id] = utterance
        known += real
        from_records += record.get("speaker") is not None
    source = speaker_source(name.lower(), rule, stm, from_records, known, len(utterances))
    shared = ((source.startswith("emobox rule") and rule is not None and rule.shared_speakers)
              or (source.startswith(f"emobox {STM_FILE}") and STM_SPEAKERS[name.lower()]))
    if source == SPEAKERS_UNKNOWN:
        why = rule.source if rule is not None else NO_SPEAKER_IN_KEYS.get(name.lower(), "no naming rule for this name")
        if name.lower() in STM_SPEAKERS and not stm:
            why += f"; EmoBox's {STM_FILE} would name them but is not in {data}"
        log.info(f"emobox {name}: speakers unknown ({why}): each utterance is its own speaker, a dev split without "
                 "a valid file is stratified by utterance, and speaker-level statistics are utterance-level")
    elif shared:
        log.info(f"emobox {name}: EmoBox's folds share speakers between train and test (speaker-dependent by "
                 "design); a dev split without a valid file is stratified by utterance")
    folds = [_fold(fold_dir, name, utterances, index, speakers_apart=source != SPEAKERS_UNKNOWN and not shared,
                   dev_fraction=dev_fraction, seed=seed) for fold_dir in _fold_dirs(data)]
    return Protocol(f"emobox:{name}", list(utterances.values()), folds, classes, main_metric="ua",
                    speaker_source=source, speaker_dependent=shared)


def _fold_dirs(data: Path) -> list[Path]:
    fold_dirs = sorted((p for p in data.glob("fold_*") if p.is_dir()), key=lambda p: int(re.sub(r"\D", "", p.name) or 0))
    if not fold_dirs:
        raise SerbenchError(f"{data}: no fold_<k> folders")
    return fold_dirs


def _fold(fold_dir: Path, name: str, utterances: dict[str, Utterance], index: Path, speakers_apart: bool,
          dev_fraction: float, seed: int) -> Fold:
    """EmoBox's fold k as written: its train and test files, its valid file where there is one,
    else a dev split from train (whole speakers when ``speakers_apart``)."""
    k = fold_dir.name.removeprefix("fold_")
    parts: dict[str, list[str]] = {}
    for split in ("train", "test", "valid"):
        path = fold_dir / f"{name}_{split}_fold_{k}.jsonl"
        if path.is_file():
            parts[split] = []
            for where, record in read_jsonl(path):
                if str(record["key"]) not in utterances:
                    raise SerbenchError(f"{where}: key {record['key']} is not in {index.name}")
                parts[split].append(str(record["key"]))
        elif split != "valid":
            raise SerbenchError(f"{path}: missing")
    train = parts["train"]
    if "valid" in parts:
        dev = parts["valid"]
    else:
        members = [utterances[i] for i in train]
        holdout = speaker_disjoint_holdout if speakers_apart else stratified_holdout
        held = holdout(members, dev_fraction, seed + int(k or 0))
        dev = [i for i in train if i in held]
        train = [i for i in train if i not in held]
    return Fold(k, tuple(train), tuple(dev), tuple(parts["test"]))


@hookimpl
def register_protocols() -> list[Spec]:
    return [
        Spec(
            name="emobox",
            factory=make_protocol,
            summary="any EmoBox corpus from its split files (data = one dataset's folder), UA",
            params=(
                Param("audio_root", str, "", "folder that relative wav paths start from (default: the data folder)"),
                Param("dev_fraction", float, 0.2, "dev share of train when a fold has no valid file", bounds="(0, 1)"),
                Param("seed", int, 0, "seed of that dev split", bounds=">= 0"),
            ),
            version="4",
            citation="Ma et al., EmoBox, Interspeech 2024, arXiv:2406.07162",
            meta=ProtocolMeta(data_key="emobox"),
        )
    ]
