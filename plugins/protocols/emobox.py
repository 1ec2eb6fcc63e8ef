"""``emobox``: any corpus from EmoBox's split files (Ma et al., Interspeech 2024).

The data folder is one dataset's folder from EmoBox's ``data/``: ``<dataset>.jsonl`` (all
utterances; fields key, wav, emo, length, ...), ``label_map.json`` (raw emo -> class) and
``fold_<k>/<dataset>_{train,test[,valid]}_fold_<k>.jsonl``. Relative ``wav`` paths resolve
against ``audio_root`` (default: the data folder). A fold without a valid file gets a dev
split from its train part: whole speakers when records carry ``speaker``, else stratified.
A record's ``gender`` is read as in the csv protocol (F / M / female / male; version 2).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from serbench import Param, ProtocolMeta, Spec, hookimpl
from serbench.corpus import Fold, Protocol, Utterance, gender
from serbench.errors import SerbenchError
from serbench.folds import (
    speaker_disjoint_holdout,
    stratified_holdout,
)
from serbench.textfiles import read_json, read_text


def read_jsonl(path: Path) -> list[tuple[str, dict]]:
    """(``file:line``, record) pairs; a line that is not a JSON object names itself."""
    records = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SerbenchError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or "key" not in record:
            raise SerbenchError(f"{path}:{number}: expected an object with a 'key' field")
        records.append((f"{path}:{number}", record))
    return records


def _utterance(where: str, record: dict, label_map: dict[str, str], audio_root: Path) -> Utterance:
    for field in ("wav", "emo"):
        if field not in record:
            raise SerbenchError(f"{where}: record {record['key']} has no {field!r} field")
    if record["emo"] not in label_map:
        raise SerbenchError(f"{where}: label {record['emo']!r} is not in label_map.json ({', '.join(label_map)})")
    wav = Path(record["wav"])
    path = wav if wav.is_absolute() else audio_root / wav
    if not path.is_file():
        raise SerbenchError(f"{path}: audio file missing (listed at {where}); set -o protocol.audio_root=DIR")
    speaker = record.get("speaker")
    return Utterance(
        id=str(record["key"]),
        path=path,
        label=label_map[record["emo"]],
        speaker=str(speaker) if speaker is not None else f"utt-{record['key']}",
        gender=gender(record.get("gender"), where),
        duration=_duration(record.get("length"), where),
    )


def _duration(value, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise SerbenchError(f"{where}: length {value!r} is not a duration in seconds")
    return float(value)


def make_protocol(data: Path | None, audio_root: str, dev_fraction: float, seed: int) -> Protocol:
    if data is None:
        raise SerbenchError("emobox needs --data PATH (one dataset's folder from EmoBox's data/)")
    data = Path(data)
    name = data.name
    index, label_file = data / f"{name}.jsonl", data / "label_map.json"
    for required in (index, label_file):
        if not required.is_file():
            raise SerbenchError(f"{required}: missing (expected EmoBox split files in {data})")
    label_map = read_json(label_file)
    if not isinstance(label_map, dict) or not label_map or not all(isinstance(v, str) for v in label_map.values()):
        raise SerbenchError(f"{label_file}: expected a JSON object mapping each raw emo label to a class name")
    classes = list(dict.fromkeys(label_map.values()))
    root = Path(audio_root).expanduser() if audio_root else data
    utterances: dict[str, Utterance] = {}
    for where, record in read_jsonl(index):
        if str(record["key"]) in utterances:
            raise SerbenchError(f"{where}: duplicate key {record['key']}")
        utterances[str(record["key"])] = _utterance(where, record, label_map, root)
    fold_dirs = sorted(data.glob("fold_*"), key=lambda p: int(re.sub(r"\D", "", p.name) or 0))
    if not fold_dirs:
        raise SerbenchError(f"{data}: no fold_<k> folders")
    folds = []
    for fold_dir in fold_dirs:
        k = fold_dir.name.removeprefix("fold_")
        parts = {}
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
            known = all(not u.speaker.startswith("utt-") for u in members)
            held = (speaker_disjoint_holdout if known else stratified_holdout)(members, dev_fraction, seed + int(k or 0))
            dev = [i for i in train if i in held]
            train = [i for i in train if i not in held]
        folds.append(Fold(k, tuple(train), tuple(dev), tuple(parts["test"])))
    return Protocol(f"emobox:{name}", list(utterances.values()), folds, classes, main_metric="ua")


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
            version="2",
            citation="Ma et al., EmoBox, Interspeech 2024, arXiv:2406.07162",
            meta=ProtocolMeta(data_key="emobox"),
        )
    ]
