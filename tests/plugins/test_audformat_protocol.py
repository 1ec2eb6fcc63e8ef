"""The audformat protocol on small databases built here with audformat itself (real wav files)."""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from serbench.api.errors import SerbenchError
from serbench.run.plan import load_protocol

from conftest import run_cli

audformat = pytest.importorskip("audformat")

RATE = 16000
SPEAKERS = {"s1": "female", "s2": "male", "s3": "female", "s4": "male"}
TONES = {"anger": 1800.0, "neutral": 300.0}


def _wav(path, label: str, seed: int, seconds: float = 0.5) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    wave = 0.3 * np.sin(2 * np.pi * TONES[label] * t) + rng.normal(0, 0.02, t.size)
    sf.write(path, wave.astype(np.float32), RATE, subtype="PCM_16")


def build_database(root, splits: bool = True, raters: list[list[str]] | None = None) -> dict[str, str]:
    """Four speakers x 4 files; emotion tables per split (speakers s1-s3 train, s4 test) or one
    table without split; speakers in a files table, their gender in a misc table."""
    files, labels = [], {}
    for s in SPEAKERS:
        for k in range(4):
            name = f"wav/{s}_{k}.wav"
            labels[name] = ["anger", "neutral"][k % 2]
            _wav(root / name, labels[name], len(files))
            files.append(name)
    db = audformat.Database("mini", source="serbench test", usage=audformat.define.Usage.RESEARCH)
    db.media["wav"] = audformat.Media(format="wav", sampling_rate=RATE)
    db.schemes["emotion"] = audformat.Scheme(labels=["neutral", "anger", "happiness"])
    db.schemes["gender"] = audformat.Scheme(labels=["female", "male"])
    db["speaker"] = audformat.MiscTable(pd.Index(list(SPEAKERS), name="speaker"))
    db["speaker"]["gender"] = audformat.Column(scheme_id="gender")
    db["speaker"]["gender"].set(list(SPEAKERS.values()))
    db.schemes["speaker"] = audformat.Scheme("str", labels="speaker")
    db["files"] = audformat.Table(audformat.filewise_index(files))
    db["files"]["speaker"] = audformat.Column(scheme_id="speaker")
    db["files"]["speaker"].set([f.split("/")[1][:2] for f in files])
    parts = {"train": files[:12], "test": files[12:]} if splits else {None: files}
    for split in parts:
        if split:
            db.splits[split] = audformat.Split(type=split)
    for r in range(len(raters or [])):
        db.raters[f"r{r + 1}"] = audformat.Rater()
    for split, members in parts.items():
        table_id = f"emotion.{split}" if split else "emotion"
        db[table_id] = audformat.Table(audformat.filewise_index(members), split_id=split)
        db[table_id]["emotion"] = audformat.Column(scheme_id="emotion")
        db[table_id]["emotion"].set([labels[f] for f in members])
        for r, votes in enumerate(raters or []):
            db[table_id][f"r{r + 1}"] = audformat.Column(scheme_id="emotion", rater_id=f"r{r + 1}")
            db[table_id][f"r{r + 1}"].set([votes[files.index(f)] for f in members])
    db.save(str(root))
    return labels


def test_splits_speakers_gender_and_a_dev_carved_from_train(tmp_path):
    labels = build_database(tmp_path / "db")
    protocol = load_protocol("audformat", tmp_path / "db")
    (fold,) = protocol.folds
    assert protocol.name == "audformat:mini" and protocol.classes == ["neutral", "anger"]  # the scheme's order
    assert sorted(fold.test) == [f"wav/s4_{k}.wav" for k in range(4)]
    assert sorted(fold.train + fold.dev) == sorted(f"wav/s{s}_{k}.wav" for s in (1, 2, 3) for k in range(4))
    speakers = {split: {protocol.utterances[i].speaker for i in getattr(fold, split)} for split in ("train", "dev")}
    assert len(speakers["dev"]) == 1 and not speakers["train"] & speakers["dev"]  # 0.2 of 12: one whole speaker
    assert {u.id: u.label for u in protocol.utterances.values()} == labels
    assert {u.speaker: u.gender for u in protocol.utterances.values()} == {"s1": "F", "s2": "M", "s3": "F", "s4": "M"}
    assert protocol.speakers_known and protocol.speaker_source == "audformat scheme 'speaker'"
    with pytest.raises(SerbenchError, match=r"no split 'valid' for protocol.dev_split \(splits: test, train\)"):
        load_protocol("audformat", tmp_path / "db", {"dev_split": "valid"})


def test_without_splits_leave_one_speaker_out(tmp_path):
    build_database(tmp_path / "db", splits=False)
    protocol = load_protocol("audformat", tmp_path / "db")
    assert [f.name for f in protocol.folds] == ["s1", "s2", "s3", "s4"]
    for fold in protocol.folds:
        assert {protocol.utterances[i].speaker for i in fold.test} == {fold.name}
        assert len(fold.train) + len(fold.dev) == 12 and fold.dev
    protocol.check_usable()


def test_rater_columns_majority_and_ties(tmp_path):
    files = [f"wav/{s}_{k}.wav" for s in SPEAKERS for k in range(4)]
    truth = [["anger", "neutral"][k % 2] for k in range(16)]
    other = {"anger": "neutral", "neutral": "anger"}
    r1 = list(truth)
    r2 = [other[x] if k == 0 else x for k, x in enumerate(truth)]  # file 0: anger, neutral, ...
    r3 = [other[x] if k in (0, 5) else x for k, x in enumerate(truth)]  # file 5 outvoted 2:1
    r3[0] = float("nan")  # file 0: one vote each for two labels -> a tie
    build_database(tmp_path / "db", raters=[r1, r2, r3])
    with pytest.raises(SerbenchError, match=r"table 'emotion.train', file 'wav/s1_0.wav': raters tie \(r1=anger, "
                                            r"r2=neutral, r3=nan\)"):
        load_protocol("audformat", tmp_path / "db", {"raters": ["r1", "r2", "r3"]})
    protocol = load_protocol("audformat", tmp_path / "db", {"raters": ["r1", "r2", "r3"], "rater_ties": "drop"})
    # majority by hand: every file keeps its true label (file 5: 2 of 3), file 0 is left out
    assert {u.id: u.label for u in protocol.utterances.values()} == {f: t for f, t in zip(files, truth) if f != files[0]}
    assert protocol.notes == {"left_out": {"rater tie": 1}}


def test_segments_and_bad_databases(tmp_path):
    root = tmp_path / "seg"
    _wav(root / "long.wav", "anger", 0, seconds=2.0)
    db = audformat.Database("seg", source="t", usage=audformat.define.Usage.RESEARCH)
    db.schemes["emotion"] = audformat.Scheme(labels=["anger", "neutral"])
    index = audformat.segmented_index(["long.wav"] * 2, [0.0, 1.0], [1.0, None])
    db["emotion"] = audformat.Table(index)
    db["emotion"]["emotion"] = audformat.Column(scheme_id="emotion")
    db["emotion"]["emotion"].set(["anger", "neutral"])
    db.save(str(root))
    utterances, _, _ = sys.modules["serbench_plugins.protocols.audformat_db"].read_utterances(
        audformat.Database.load(str(root)), _options())
    assert [(u.id, u.segment) for u in utterances] == [("long.wav@0.000-1.000", (0.0, 1.0)),
                                                       ("long.wav@1.000-2.000", (1.0, 2.0))]
    with pytest.raises(SerbenchError, match=r"leave-one-speaker-out folds need a speaker"):
        load_protocol("audformat", root)
    with pytest.raises(SerbenchError, match=r"no table 'emo' \(tables: emotion\)"):
        load_protocol("audformat", root, {"tables": ["emo"]})
    with pytest.raises(SerbenchError, match=r"db.yaml: missing"):
        load_protocol("audformat", tmp_path)


def _options(**changes):
    from serbench.run.registry import registry
    from serbench_plugins.protocols.audformat_db import AudformatOptions

    spec = registry().get("protocol", "audformat")
    return AudformatOptions(**spec.resolve(changes, "-o protocol"))


def test_without_the_package_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    build_database(tmp_path / "db")
    monkeypatch.setitem(sys.modules, "audformat", None)  # import audformat now raises ImportError
    with pytest.raises(SerbenchError, match=r"needs the audformat package: pip install 'serbench\[audformat\]'"):
        load_protocol("audformat", tmp_path / "db")


@pytest.mark.slow
def test_audformat_run_end_to_end(tmp_path):
    build_database(tmp_path / "db")
    out = tmp_path / "runs"
    done = run_cli("run", "--upstream", "fbank", "--downstream", "superb", "--protocol", "audformat",
                   "--data", str(tmp_path / "db"), "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    (run_dir,) = out.iterdir()
    result = json.loads((run_dir / "result.json").read_text())
    assert result["classes"] == ["neutral", "anger"] and result["folds"][0]["n_test"] == 4
    with open(run_dir / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert Counter(r["speaker"] for r in rows) == {"s4": 4} and {r["fold"] for r in rows} == {"test"}
    assert {r["utterance_id"]: r["label"] for r in rows} == {f"wav/s4_{k}.wav": ["anger", "neutral"][k % 2] for k in range(4)}


def test_a_file_labelled_in_two_tables_is_refused_until_the_tables_are_chosen(tmp_path):
    labels = build_database(tmp_path / "db")
    db = audformat.Database.load(str(tmp_path / "db"))
    db["emotion.all"] = audformat.Table(audformat.filewise_index(sorted(labels)))
    db["emotion.all"]["emotion"] = audformat.Column(scheme_id="emotion")
    db["emotion.all"]["emotion"].set([labels[f] for f in sorted(labels)])
    db.save(str(tmp_path / "db"))
    with pytest.raises(SerbenchError, match=r"file 'wav/s\d_\d.wav': utterance .* is labelled in table 'emotion\.\w+' too; "
                                            r"choose the label tables with -o protocol.tables"):
        load_protocol("audformat", tmp_path / "db")
    protocol = load_protocol("audformat", tmp_path / "db", {"tables": ["emotion.all"]})
    assert [f.name for f in protocol.folds] == list(SPEAKERS) and len(protocol.utterances) == 16  # no split id: loso
