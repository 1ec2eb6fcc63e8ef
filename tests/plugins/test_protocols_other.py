"""MSP-Podcast, EmoBox and CSV protocols on look-alike corpora."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from serbench.api.errors import SerbenchError
from serbench.run.plan import load_protocol, plan
from serbench.run.request import RunRequest
from serbench_plugins.protocols.iemocap import COUNTS_MERGED

from lookalike import reference_records, tiny_wav, write_emobox, write_iemocap, write_msp_podcast

MSP_CLASSES = ["angry", "sad", "happy", "surprise", "fear", "disgust", "contempt", "neutral"]


@pytest.fixture
def msp(tmp_path):
    return tmp_path, write_msp_podcast(tmp_path)


def test_msp_podcast_partitions_classes_and_unknown_speakers(msp):
    root, rows = msp
    protocol = load_protocol("msp_podcast", root)
    assert protocol.classes == MSP_CLASSES and protocol.main_metric == "macro_f1"
    (fold,) = protocol.folds
    by_split = {s: [r for r in rows if r[7] == s and r[1] not in "XO"] for s in ("Train", "Development", "Test1")}
    assert len(fold.train) == len(by_split["Train"]) == 24
    assert len(fold.dev) == len(by_split["Development"]) and len(fold.test) == len(by_split["Test1"])
    assert all(not u.id.startswith("X") for u in protocol.utterances.values())
    unknown = [u for u in protocol.utterances.values() if u.speaker.startswith("unknown-")]
    assert len(unknown) == len({u.speaker for u in unknown}) == 24  # one speaker each
    u = protocol.utterances["MSP-PODCAST_0000_0000"]
    assert u.label == "angry" and u.gender == "M" and u.transcript == "transcript 0"
    assert u.attributes == pytest.approx({"valence": 2 / 6, "arousal": 3.2 / 6, "dominance": 4.5 / 6})


def test_msp_podcast_keeps_x_and_o_rows_under_the_dimensional_task(msp):
    """The look-alike labels file has 3 X and 3 O rows per partition: the categorical task drops
    them, the dimensional one keeps them with their attributes, read as (x - 1) / 6."""
    root, rows = msp
    categorical = load_protocol("msp_podcast", root)
    dimensional = load_protocol("msp_podcast", root, {"task": "dimensional"})
    (fold,), (wide,) = categorical.folds, dimensional.folds
    for split, ids_c, ids_d in (("Train", fold.train, wide.train), ("Test1", fold.test, wide.test)):
        expected = [Path(r[0]).stem for r in rows if r[7] == split]
        assert sorted(ids_d) == sorted(expected) and len(ids_d) == 30
        assert sorted(ids_c) == sorted(Path(r[0]).stem for r in rows if r[7] == split and r[1] not in "XO")
    assert dimensional.classes == MSP_CLASSES + ["no_agreement", "other"] and categorical.classes == MSP_CLASSES
    x_row = next(r for r in rows if r[1] == "X" and r[7] == "Test1")
    u = dimensional.utterances[Path(x_row[0]).stem]
    assert u.label == "no_agreement"
    assert u.attributes == pytest.approx({"valence": 2 / 6, "arousal": 3.2 / 6, "dominance": 4.5 / 6})


def test_the_run_sets_msp_podcasts_task_from_its_own_task_option(msp):
    root, _ = msp
    categorical = plan(RunRequest("fbank", "superb", protocol="msp_podcast", data=root, device="cpu"))
    assert "task" not in categorical.config["protocol"]["params"]  # the categorical configuration (and id) as it was
    dimensional = plan(RunRequest("fbank", "superb", protocol="msp_podcast", data=root, device="cpu", task="dimensional"))
    assert dimensional.config["protocol"]["params"]["task"] == "dimensional"
    assert len(dimensional.protocol().folds[0].test) == 30  # X and O rows scored
    with pytest.raises(SerbenchError, match=r"-o protocol\.task: set by --task"):
        plan(RunRequest("fbank", "superb", protocol="msp_podcast", data=root, device="cpu",
                        overrides=["protocol.task=dimensional"]))


def test_msp_podcast_test_set_option(msp):
    root, rows = msp
    test2 = load_protocol("msp_podcast", root, {"test_set": "Test2"}).folds[0]
    assert len(test2.test) == 24 and test2.name == "Test2"
    public = load_protocol("msp_podcast", root, {"test_set": "Development"})
    fold = public.folds[0]
    assert len(fold.test) == 24 and len(fold.train) + len(fold.dev) == 24
    speakers = lambda ids: {public.utterances[i].speaker for i in ids}  # noqa: E731
    assert fold.dev and not speakers(fold.train) & speakers(fold.dev)


def test_msp_podcast_defaults_to_weighted_ce(msp):
    resolved = plan(RunRequest("fbank", "superb", protocol="msp_podcast", data=msp[0], device="cpu"))
    assert resolved.config["loss"]["name"] == "weighted_ce"


@pytest.mark.parametrize(
    "row, message",
    [
        (["a.wav", "Q", "4", "4", "4", "1", "Male", "Train"], r"labels_consensus.csv:2: unknown EmoClass 'Q'"),
        (["a.wav", "A", "4", "4", "4", "1", "Male", "Test9"], r"labels_consensus.csv:2: unknown Split_Set 'Test9'"),
        (["a.wav", "A", "high", "4", "4", "1", "Male", "Train"], r"labels_consensus.csv:2: EmoAct 'high' is not a number"),
    ],
)
def test_msp_podcast_bad_rows_name_the_line(tmp_path, row, message):
    write_msp_podcast(tmp_path, [row])
    with pytest.raises(SerbenchError, match=message):
        load_protocol("msp_podcast", tmp_path)


def test_msp_podcast_missing_audio_and_bad_header(msp):
    root, rows = msp
    (root / "Audios" / rows[0][0]).unlink()
    with pytest.raises(SerbenchError, match=rf"{rows[0][0]}: audio file missing \(listed at .*labels_consensus.csv:2\)"):
        load_protocol("msp_podcast", root)
    (root / "Labels" / "labels_consensus.csv").write_text("FileName,EmoClass\nx.wav,A\n")
    with pytest.raises(SerbenchError, match=r"labels_consensus.csv:1: header lacks EmoAct"):
        load_protocol("msp_podcast", root)


@pytest.mark.parametrize("with_valid", [True, False])
def test_emobox_split_files_on_the_reference_list(tmp_path, with_valid):
    records = reference_records()
    audio_root = tmp_path / "EmoBox"
    write_iemocap(audio_root / "downloads" / "iemocap", [(r["key"].removeprefix("iemocap-"), r["emo"]) for r in records], distractors=False)
    data = audio_root / "data" / "iemocap"
    write_emobox(data, records, with_valid)
    protocol = load_protocol("emobox", data, {"audio_root": str(audio_root)})
    assert protocol.classes == ["Neutral", "Happy", "Angry", "Sad"] and len(protocol.utterances) == 5531
    assert Counter(u.label for u in protocol.utterances.values())["Happy"] == COUNTS_MERGED["label:happy"]
    assert [f.name for f in protocol.folds] == ["1", "2", "3", "4", "5"]
    assert protocol.speaker_source.startswith("emobox rule for iemocap") and not protocol.speaker_dependent
    assert sorted({u.speaker for u in protocol.utterances.values()}) == [f"Ses0{s}{g}" for s in range(1, 6) for g in "FM"]
    for k, fold in enumerate(protocol.folds, start=1):
        assert fold.dev and len(fold.train) + len(fold.dev) + len(fold.test) == 5531
        speakers = {split: {protocol.utterances[i].speaker for i in getattr(fold, split)} for split in ("train", "dev", "test")}
        assert speakers["test"] == {f"Ses0{k}F", f"Ses0{k}M"}  # EmoBox's fold k tests session k
        assert not speakers["train"] & speakers["test"]
        assert with_valid or not speakers["train"] & speakers["dev"]  # a carved-out dev takes whole speakers
    with pytest.raises(SerbenchError, match="audio file missing .*set -o protocol.audio_root"):
        load_protocol("emobox", data)


def test_emobox_unknown_label_names_the_line(tmp_path):
    data = tmp_path / "mini"
    tiny_wav(data / "a.wav", 0)
    write_emobox(data, [], with_valid=False)
    (data / "mini.jsonl").write_text(json.dumps({"key": "a", "wav": "a.wav", "emo": "joy", "length": 0.05}) + "\n")
    with pytest.raises(SerbenchError, match=r"mini.jsonl:1: label 'joy' is not in label_map.json"):
        load_protocol("emobox", data)


@pytest.mark.parametrize("edit, message", [
    (lambda data: (data / "label_map.json").write_text("[1, 2]"), r"label_map\.json: expected a JSON object mapping"),
    (lambda data: (data / "mini.jsonl").write_text(json.dumps({"key": "a", "wav": "a.wav", "emo": "neu", "length": "x"}) + "\n"),
     r"mini\.jsonl:1: length 'x' is not a duration in seconds"),
    (lambda data: (data / "mini.jsonl").write_text(json.dumps({"key": "a", "wav": "a.wav", "emo": "neu", "gender": "?"}) + "\n"),
     r"mini\.jsonl:1: gender '\?' is not one of F, M"),
])
def test_emobox_malformed_records_name_the_file(tmp_path, edit, message):
    data = tmp_path / "mini"
    tiny_wav(data / "a.wav", 0)
    write_emobox(data, [], with_valid=False)
    (data / "mini.jsonl").write_text(json.dumps({"key": "a", "wav": "a.wav", "emo": "neu", "length": 0.05}) + "\n")
    edit(data)
    with pytest.raises(SerbenchError, match=message):
        load_protocol("emobox", data)


def _csv_corpus(tmp_path, header: str, rows: list[str]):
    for k in range(len(rows)):
        tiny_wav(tmp_path / "wav" / f"{k}.wav", k)
    path = tmp_path / "corpus.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_csv_with_folds_and_attributes(tmp_path):
    rows = [f"wav/{k}.wav,{'ab'[k % 2]},s{k % 4},{1 + k % 3},{k % 5 + 1}" for k in range(12)]
    path = _csv_corpus(tmp_path, "path,label,speaker,fold,valence", rows)
    protocol = load_protocol("csv", path)
    assert protocol.classes == ["a", "b"] and [f.name for f in protocol.folds] == ["1", "2", "3"]
    for fold in protocol.folds:
        assert {protocol.utterances[i].session for i in fold.test} == {fold.name}
        assert len(fold.train) + len(fold.dev) == 8 and fold.dev
    assert protocol.utterances["wav/4.wav"].attributes == {"valence": 1.0}


def test_csv_with_split_column_and_errors(tmp_path):
    rows = [f"wav/{k}.wav,{'ab'[k % 2]},{['train', 'dev', 'test'][k % 3]}" for k in range(9)]
    path = _csv_corpus(tmp_path, "path,label,split", rows)
    (fold,) = load_protocol("csv", path, ["protocol.classes=['b', 'a']"]).folds
    assert (len(fold.train), len(fold.dev), len(fold.test)) == (3, 3, 3)
    bad = _csv_corpus(tmp_path, "path,label,split", rows[:2] + ["wav/2.wav,a,holdout"])
    with pytest.raises(SerbenchError, match=r"corpus.csv:4: split 'holdout' is not one of train, dev, test"):
        load_protocol("csv", bad)
    neither = _csv_corpus(tmp_path, "path,label", ["wav/0.wav,a"])
    with pytest.raises(SerbenchError, match=r"corpus.csv:1: needs a fold column"):
        load_protocol("csv", neither)


def test_csv_gender_is_read_as_f_or_m_and_anything_else_is_refused(tmp_path):
    """Kept as written, ``female`` would count as unknown: gender conditioning switched off silently."""
    genders = ["female", "Male", "F", "m", "", " FEMALE "]
    rows = [f"wav/{k}.wav,{'ab'[k % 2]},s{k % 4},{1 + k % 3},{genders[k % 6]}" for k in range(12)]
    protocol = load_protocol("csv", _csv_corpus(tmp_path, "path,label,speaker,fold,gender", rows))
    assert [protocol.utterances[f"wav/{k}.wav"].gender for k in range(6)] == ["F", "M", "F", "M", None, "F"]
    rows[7] = rows[7].rsplit(",", 1)[0] + ",x"
    with pytest.raises(SerbenchError, match=r"corpus\.csv:9: gender 'x' is not one of F, M, female, male"):
        load_protocol("csv", _csv_corpus(tmp_path, "path,label,speaker,fold,gender", rows))


def test_a_200k_character_transcript_is_one_field(tmp_path):
    """Python's csv module refuses fields over 131,072 characters unless told otherwise."""
    rows = [f"wav/{k}.wav,{'ab'[k % 2]},{1 + k % 3},{'word ' * 40_000 if k == 0 else 'short'}" for k in range(6)]
    protocol = load_protocol("csv", _csv_corpus(tmp_path, "path,label,fold,transcript", rows))
    assert len(protocol.utterances["wav/0.wav"].transcript) == 199_999  # 'word ' x 40,000, stripped
