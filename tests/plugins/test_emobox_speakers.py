"""EmoBox speakers: each dataset's naming rule on real keys from EmoBox's files, and the emobox
protocol on small dataset folders laid out as EmoBox's data/<dataset>/ is (tiny wav files).

Every expected speaker and gender below is written by hand from the corpus's documentation
(its file-naming convention, its published speaker list); the keys are copied from EmoBox's
``data/<dataset>/*.jsonl`` files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from serbench.api.errors import SerbenchError
from serbench.api.protocol import SPEAKERS_UNKNOWN
from serbench.run.plan import load_protocol
from serbench_plugins.protocols.emobox_speakers import CREMA_D_ACTORS, NO_SPEAKER_IN_KEYS, RULES

from lookalike import tiny_wav

# The folders of EmoBox's data/ (github.com/emo-box/EmoBox, 32 datasets; track2 holds another
# challenge's lists, not a dataset).
EMOBOX_DATASETS = """aesdd ased asvpesd cafe casia cremad emns emodb emovdb emovo emozionalmente enterface esd
iemocap jlcorpus m3ed mead meld mer2023 mesd msppodcast oreau pavoque polish ravdess resd savee shemo subesco
tess turevdb urdu""".split()

F, M = "F", "M"
REAL_KEYS = [  # (dataset, EmoBox key, expected (speaker, gender))
    ("aesdd", "aesdd-a03-3", ("3", None)),
    ("aesdd", "aesdd-f13-01", ("1", None)),  # "f13 (01).wav": actor 1 written with a zero
    ("aesdd", "aesdd-a06-5b", ("5", None)),  # "a06 (5)b.wav": a second take of actor 5
    ("ased", "ased-a5-02-01-01-33", ("33", None)),
    ("ased", "ased-n1-04-01-02-06", ("06", None)),
    ("asvpesd", "asvpesd-03-01-09-01-06-36-02-02-01-39", ("36", None)),
    ("asvpesd", "asvpesd-03-01-05-02-08-07-02-03-01", ("7", None)),  # folder actor_7
    ("asvpesd", "asvpesd-03-02-04-01-93-150-04-01-00-14-28", ("150", None)),
    ("asvpesd", "asvpesd-03-02-04-01-52-150-04-01-00-14 -03", ("150", None)),
    ("cafe", "cafe-12-P-2-5", ("12", None)),
    ("cafe", "cafe-01-S-2-4", ("01", None)),
    ("casia", "casia-239-wangzhe-neutral", ("wangzhe", None)),
    ("casia", "casia-209-liuchanhg-surprise", ("liuchanhg", None)),
    ("cremad", "cremad-1087-IWL-ANG-XX", ("1087", M)),  # VideoDemographics.csv: 1087 Male
    ("cremad", "cremad-1074-IWL-ANG-XX", ("1074", F)),  # 1074 Female
    ("cremad", "cremad-1028-TAI-HAP-XX", ("1028", F)),
    ("cremad", "cremad-1042-DFA-SAD-XX", ("1042", M)),
    ("emns", "emns-recorded_audio_RF6OuQ4", ("emns", None)),
    ("emns", "emns-recorded_audio", ("emns", None)),
    ("emodb", "emodb-03a01Wa", ("03", M)),
    ("emodb", "emodb-13a02Lc", ("13", F)),
    ("emodb", "emodb-15b09Fa", ("15", M)),
    ("emodb", "emodb-08b01Nb", ("08", F)),
    ("emovdb", "emovdb-jenie-Amused-0057", ("jenie", F)),
    ("emovdb", "emovdb-sam-Disgust-0333", ("sam", M)),
    ("emovo", "emovo-gio-f2-b2", ("f2", F)),
    ("emovo", "emovo-gio-m3-l1", ("m3", M)),
    ("enterface", "enterface-s19_an_4.avi", ("19", None)),
    ("enterface", "enterface-s6_an.avi", ("6", None)),
    ("enterface", "enterface-s_3_su_4.avi", ("3", None)),
    ("enterface", "enterface-s16_su_3avi.avi", ("16", None)),
    ("esd", "esd-0005-000001", ("0005", None)),
    ("esd", "esd-0016-001355", ("0016", None)),
    ("iemocap", "iemocap-Ses01F_impro04_F000", ("Ses01F", F)),
    ("iemocap", "iemocap-Ses01F_impro06_M006", ("Ses01M", M)),  # the man speaks in the woman's dialog
    ("iemocap", "iemocap-Ses05M_script03_2_F028", ("Ses05F", F)),
    ("jlcorpus", "jlcorpus-male2-concerned-6b-1", ("male2", M)),
    ("jlcorpus", "jlcorpus-female1-apologetic-15b-2", ("female1", F)),
    ("mead", "mead-W019-neutral-level-1-020", ("W019", F)),
    ("mead", "mead-M028-happy-level-2-003", ("M028", M)),
    ("mesd", "mesd-Anger_F_A_tarde", (None, F)),
    ("mesd", "mesd-Disgust_M_A_basta_ya", (None, M)),
    ("mesd", "mesd-Sadness_C_B_abandono", (None, None)),  # a child's voice: no gender given
    ("oreau", "oreau-10a02Ja", ("10", None)),
    ("oreau", "oreau-07z04Sa", ("07", None)),
    ("pavoque", "pavoque-poker_n0010-poker", ("pavoque", M)),
    ("pavoque", "pavoque-a0952a-neutral", ("pavoque", M)),
    ("polish", "polish-m3.s_trzymaj_5", ("m3", None)),
    ("ravdess", "ravdess-03-01-05-01-02-01-18", ("18", F)),  # even actor: female
    ("ravdess", "ravdess-03-01-06-02-01-01-01", ("01", M)),  # odd actor: male
    ("savee", "savee-JE-n23", ("JE", M)),
    ("savee", "savee-KL-su14", ("KL", M)),
    ("shemo", "shemo-M36S02", ("M36", M)),
    ("shemo", "shemo-F21N23", ("F21", F)),
    ("subesco", "subesco-F_10_FAHMEE_S_6_FEAR_5", ("F_10", F)),
    ("subesco", "subesco-M_10_EVAN_S_8_DISGUST_2", ("M_10", M)),
    ("subesco", "subesco-F_02_MONIKA_S_2_SURPRISE_3]", ("F_02", F)),
    ("tess", "tess-OAF-lid-fear", ("OAF", F)),
    ("tess", "tess-YAF-chair-disgust", ("YAF", F)),
    ("turevdb", "turevdb-1984_sk_eger.wav", ("1984", None)),
    ("urdu", "urdu-SM20_F8_N012", ("SM20", M)),
    ("urdu", "urdu-SF11_F1_S03", ("SF11", F)),
]


@pytest.mark.parametrize("dataset, key, expected", REAL_KEYS, ids=[k for _, k, _ in REAL_KEYS])
def test_rule_reads_real_keys(dataset, key, expected):
    assert RULES[dataset].read(key.removeprefix(f"{dataset}-")) == expected


def test_every_emobox_dataset_has_a_rule_or_a_reason():
    assert len(EMOBOX_DATASETS) == 32
    assert sorted(set(RULES) | set(NO_SPEAKER_IN_KEYS)) == sorted(EMOBOX_DATASETS)
    assert not set(RULES) & set(NO_SPEAKER_IN_KEYS)
    with_keys = {d for d, _, _ in REAL_KEYS}
    assert with_keys == set(RULES)  # every rule is tried on real keys above


def test_crema_d_sexes_match_the_published_count():
    # CREMA-D: 91 actors, 48 men and 43 women (Cao et al. 2014).
    assert len(CREMA_D_ACTORS) == 91
    assert sorted(CREMA_D_ACTORS.values()).count(M) == 48 and sorted(CREMA_D_ACTORS.values()).count(F) == 43


@pytest.mark.parametrize("dataset, key", [
    ("emodb", "emodb-3a01Wa"),  # one digit: not EmoDB's naming
    ("ravdess", "ravdess-03-01-05-01-02-18"),  # six fields
    ("cremad", "cremad-0087-IWL-ANG-XX"),  # not an ActorID (1001-1091)
    ("iemocap", "iemocap-Ses01F_impro04_X000"),
])
def test_rule_refuses_keys_off_the_convention(dataset, key):
    assert RULES[dataset].read(key.removeprefix(f"{dataset}-")) is None


# ---- the protocol on small EmoBox-shaped folders ----------------------------------------------


def record(dataset: str, key: str, emo: str, **extra) -> dict:
    """One line as EmoBox writes it (relative wav under downloads/<dataset>/)."""
    return {"key": f"{dataset}-{key}", "dataset": dataset, "wav": f"downloads/{dataset}/{key}.wav", "type": "raw",
            "sample_rate": 16000, "num_frame": 800.0, "task": "category", "length": 0.05, "emo": emo, "channel": 1,
            **extra}


def write_dataset(root: Path, dataset: str, folds: dict[str, dict[str, list[dict]]], label_map: dict[str, str],
                  label_file: str = "label_map.json") -> Path:
    """EmoBox's layout: data/<dataset>/<dataset>.jsonl, its label map, fold_<k>/<dataset>_<split>_fold_<k>.jsonl;
    audio under downloads/ (the audio_root)."""
    data = root / "data" / dataset
    data.mkdir(parents=True)
    everything = {r["key"]: r for parts in folds.values() for rows in parts.values() for r in rows}
    (data / f"{dataset}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in everything.values()))
    (data / label_file).write_text(json.dumps(label_map, indent=4))
    for n, r in enumerate(everything.values()):
        tiny_wav(root / r["wav"], seed=n)
    for k, parts in folds.items():
        (data / f"fold_{k}").mkdir()
        for split, rows in parts.items():
            (data / f"fold_{k}" / f"{dataset}_{split}_fold_{k}.jsonl").write_text(
                "".join(json.dumps(r) + "\n" for r in rows))
    return data


def load(root: Path, data: Path, **options):
    return load_protocol("emobox", data, {"audio_root": str(root), **options})


EMODB_MAP = {"anger": "Angry", "boredem": "Boredom", "Neutral": "Neutral"}  # as EmoBox writes it (Neutral)


def emodb_rows(speakers=("03", "08", "10", "16")) -> list[dict]:
    rows = []
    for s in speakers:
        for n, (code, emo) in enumerate([("W", "anger"), ("L", "boredem"), ("N", "neutral")] * 2):
            rows.append(record("emodb", f"{s}a0{n}{code}a", emo))
    return rows


def test_emodb_gets_speakers_genders_and_its_neutral(tmp_path):
    rows = emodb_rows()
    in_test = lambda i, k: (i // 3) % 3 == k - 1  # noqa: E731  (rows come in threes: W, L, N)
    folds = {str(k): {"train": [r for i, r in enumerate(rows) if not in_test(i, k)],
                      "test": [r for i, r in enumerate(rows) if in_test(i, k)]} for k in (1, 2, 3)}
    data = write_dataset(tmp_path, "emodb", folds, EMODB_MAP)
    # EmoBox also ships older emodb_<split>_fold1.jsonl files in another schema: not read.
    (data / "fold_1" / "emodb_test_fold1.jsonl").write_text(json.dumps({"key": "emodb-x", "audio": "x", "label": "y"}))
    protocol = load(tmp_path, data)
    assert protocol.classes == ["Angry", "Boredom", "Neutral"]
    u = protocol.utterances["emodb-08a02Na"]
    assert (u.label, u.speaker, u.gender) == ("Neutral", "08", "F")
    assert {v.speaker: v.gender for v in protocol.utterances.values()} == {"03": "M", "08": "F", "10": "M", "16": "F"}
    assert protocol.speaker_source == "emobox rule for emodb: characters 1-2 of the key (the speaker)"
    assert protocol.speakers_known and protocol.speaker_dependent  # EmoBox's emodb folds mix speakers
    assert [f.name for f in protocol.folds] == ["1", "2", "3"]
    for k, fold in zip((1, 2, 3), protocol.folds):
        assert sorted(fold.test) == sorted(r["key"] for i, r in enumerate(rows) if in_test(i, k))
        assert sorted(fold.train + fold.dev) == sorted(r["key"] for i, r in enumerate(rows) if not in_test(i, k))
        # stratified by utterance: round(0.2 * n) per class, n = 5 or 6 training utterances a class
        assert sorted(protocol.utterances[i].label for i in fold.dev) == ["Angry", "Boredom", "Neutral"]
    protocol.check_usable()  # speaker-dependent by declaration: not refused as a leak


def test_speaker_independent_dataset_dev_takes_whole_speakers_and_leaks_are_caught(tmp_path):
    def actor_rows(actor: int) -> list[dict]:
        return [record("ravdess", f"03-01-{e:02d}-01-0{s}-01-{actor:02d}", emo)
                for e, emo in ((5, "Angry"), (4, "Sad")) for s in (1, 2)]

    actors = {a: actor_rows(a) for a in range(1, 9)}
    folds = {"1": {"train": [r for a in range(3, 9) for r in actors[a]], "test": actors[1] + actors[2]}}
    data = write_dataset(tmp_path, "ravdess", folds, {"Angry": "Angry", "Sad": "Sad"})
    protocol = load(tmp_path, data, dev_fraction=0.3)
    (fold,) = protocol.folds
    speakers = lambda ids: {protocol.utterances[i].speaker for i in ids}  # noqa: E731
    assert speakers(fold.test) == {"01", "02"} and not speakers(fold.train) & speakers(fold.dev)
    assert len(speakers(fold.dev)) == 2 and len(fold.dev) == 8  # whole actors until >= 30% of 24
    assert {protocol.utterances[i].gender for i in fold.test} == {"M", "F"}
    assert not protocol.speaker_dependent
    protocol.check_usable()
    # an edited fold that tests two of actor 3's utterances and trains on the other two is a leak
    leaky = write_dataset(tmp_path / "edited", "ravdess",
                          {"1": {"train": [r for a in range(4, 9) for r in actors[a]] + actors[3][:2],
                                 "valid": actors[2], "test": actors[1] + actors[3][2:]}},
                          {"Angry": "Angry", "Sad": "Sad"})
    with pytest.raises(SerbenchError, match="fold 1: speaker '03' is in both train and test"):
        load(tmp_path / "edited", leaky).check_usable()


def test_dataset_without_speakers_in_its_keys_is_unknown_and_uses_its_valid_file(tmp_path, caplog):
    emos = ["neutral", "joy", "anger"]
    rows = {split: [record("meld", f"dia{d}_utt{u}-{split}", emos[(d + u) % 3]) for d in range(2) for u in range(3)]
            for split in ("train", "dev", "test")}
    folds = {"1": {"train": rows["train"], "valid": rows["dev"], "test": rows["test"]}}
    data = write_dataset(tmp_path, "meld", folds, {"neutral": "Neutral", "joy": "Happy", "anger": "Angry"})
    with caplog.at_level(logging.INFO, logger="serbench"):
        protocol = load(tmp_path, data)
    assert protocol.speaker_source == SPEAKERS_UNKNOWN and not protocol.speakers_known
    assert len({u.speaker for u in protocol.utterances.values()}) == 18  # one pseudo-speaker each
    (fold,) = protocol.folds
    assert list(fold.dev) == [r["key"] for r in rows["dev"]] and list(fold.train) == [r["key"] for r in rows["train"]]
    assert "emobox meld: speakers unknown (keys are <dialogue>_<utterance>-<split>" in caplog.text
    assert "data.seg.wrd.stm would name them but is not in" in caplog.text


def test_record_fields_win_over_the_rule(tmp_path):
    own = {"DC": {"speaker": "X", "gender": "female"}, "JK": {"speaker": "Y"}, "JE": {}}
    rows = [record("savee", f"{s}-{e}0{n}", e, **own[s]) for s in own for e in ("a", "n") for n in (1, 2)]
    folds = {"1": {"train": [r for r in rows if r["key"].endswith("1")],
                   "test": [r for r in rows if r["key"].endswith("2")]}}
    data = write_dataset(tmp_path, "savee", folds, {"a": "Angry", "n": "Neutral"})
    protocol = load(tmp_path, data)
    assert (protocol.utterances["savee-DC-a01"].speaker, protocol.utterances["savee-DC-a01"].gender) == ("X", "F")
    assert (protocol.utterances["savee-JE-n01"].speaker, protocol.utterances["savee-JE-n01"].gender) == ("JE", "M")
    assert (protocol.utterances["savee-JK-n01"].speaker, protocol.utterances["savee-JK-n01"].gender) == ("Y", "M")
    assert protocol.speaker_source.startswith("emobox rule for savee")


def test_all_records_with_speakers_are_corpus_metadata(tmp_path):
    rows = [record("mycorpus", f"u{n}", ["a", "b"][n % 2], speaker=f"s{n % 4}") for n in range(8)]
    data = write_dataset(tmp_path, "mycorpus", {"1": {"train": rows[:4] + rows[6:], "test": rows[4:6]}}, {"a": "A", "b": "B"})
    protocol = load(tmp_path, data)
    assert protocol.speaker_source == "corpus metadata" and not protocol.speaker_dependent


def test_emovo_label_dict_and_mer2023_extra_test_files(tmp_path):
    rows = [record("emovo", f"{e}-{s}-b{n}", e) for s in ("f1", "m1", "f2") for e in ("gio", "tri") for n in (1, 2)]
    data = write_dataset(tmp_path, "emovo", {"1": {"train": rows[4:], "test": rows[:4]}},
                         {"gio": "Happy", "tri": "Sad"}, label_file="label_dict.json")
    protocol = load(tmp_path, data)
    assert protocol.utterances["emovo-gio-m1-b1"].label == "Happy" and protocol.utterances["emovo-gio-m1-b1"].gender == "M"
    rows = [record("mer2023", f"sample_{n:08d}", ["happy", "sad"][n % 2]) for n in range(10)]
    data = write_dataset(tmp_path / "m", "mer2023", {"1": {"train": rows[:6], "test": rows[6:8], "test2": rows[8:]}},
                         {"happy": "Happy", "sad": "Sad"})
    (fold,) = load(tmp_path / "m", data).folds
    assert sorted(fold.test) == [r["key"] for r in rows[6:8]]  # test2 is not EmoBox's test set


def test_labels_differing_only_by_case_but_mapping_apart_are_refused(tmp_path):
    rows = emodb_rows(("03", "08"))
    data = write_dataset(tmp_path, "emodb", {"1": {"train": rows[:6], "test": rows[6:]}},
                         {**EMODB_MAP, "neutral": "Calm"})
    with pytest.raises(SerbenchError, match=r"label_map\.json: labels 'Neutral' and 'neutral' differ only by case"):
        load(tmp_path, data)


def test_key_off_the_naming_rule_names_the_line(tmp_path):
    rows = emodb_rows(("03", "08"))
    rows[1]["key"] = "emodb-x3a01Wa"
    data = write_dataset(tmp_path, "emodb", {"1": {"train": rows[:6], "test": rows[6:]}}, EMODB_MAP)
    with pytest.raises(SerbenchError, match=r"emodb\.jsonl:2: key 'emodb-x3a01Wa' does not follow emodb's naming"):
        load(tmp_path, data)


def stm_line(key: str, speaker: str, emo: str) -> str:
    """A line as EmoBox's data.seg.wrd.stm writes it."""
    return f"{key} 1 {speaker} 0 1.5 <id={key},lang=en,spk={speaker},emotion={emo}> {emo}\n"


def test_meld_takes_speakers_from_emobox_stm_file(tmp_path):
    cast = ["Chandler", "Joey", "The-Interviewer"]
    emos = ["neutral", "joy", "anger"]
    rows = {split: [record("meld", f"dia{d}_utt{u}-{split}", emos[(d + u) % 3]) for d in range(2) for u in range(3)]
            for split in ("train", "dev", "test")}
    folds = {"1": {"train": rows["train"], "valid": rows["dev"], "test": rows["test"]}}
    data = write_dataset(tmp_path, "meld", folds, {"neutral": "Neutral", "joy": "Happy", "anger": "Angry"})
    lines = [stm_line(r["key"], cast[n % 3], r["emo"]) for split in rows for n, r in enumerate(rows[split])]
    (data / "data.seg.wrd.stm").write_text("".join(lines))
    protocol = load(tmp_path, data)
    assert protocol.speaker_source == "emobox data.seg.wrd.stm for meld: its speaker column"
    assert protocol.utterances["meld-dia0_utt1-test"].speaker == "Joey"  # 2nd test line
    assert protocol.utterances["meld-dia1_utt2-dev"].speaker == "The-Interviewer"  # 6th dev line
    assert {u.speaker for u in protocol.utterances.values()} == set(cast)
    assert protocol.speaker_dependent  # MELD's characters are in train and test
    protocol.check_usable()
    (data / "data.seg.wrd.stm").write_text("".join(lines[1:]))
    with pytest.raises(SerbenchError, match=r"meld\.jsonl:1: key 'meld-dia0_utt0-train' has no line in data\.seg\.wrd\.stm"):
        load(tmp_path, data)


def test_m3ed_stm_speakers_are_speaker_independent(tmp_path):
    # M3ED's splits are whole TV series; a character (<series>_<name>) is in one split only.
    rows = {split: [record("m3ed", f"{series}_1_{u}", ["Neutral", "Anger"][u % 2]) for u in range(4)]
            for split, series in (("train", "anjia"), ("valid", "huanlesong"), ("test", "xiaohuanxi"))}
    data = write_dataset(tmp_path, "m3ed", {"1": rows}, {"Neutral": "Neutral", "Anger": "Angry"})
    (data / "data.seg.wrd.stm").write_text("".join(
        stm_line(r["key"], f"{r['key'].split('-')[1].split('_')[0]}_{'AB'[n % 2]}", r["emo"])
        for split in rows for n, r in enumerate(rows[split])))
    protocol = load(tmp_path, data)
    assert protocol.utterances["m3ed-xiaohuanxi_1_3"].speaker == "xiaohuanxi_B"
    assert not protocol.speaker_dependent
    protocol.check_usable()

