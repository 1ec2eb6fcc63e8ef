"""Speaker leakage: a fold whose train and test share a speaker is refused unless the protocol
declares itself speaker-dependent, and every result records where its speakers came from.

The expected leaks are counted by hand from the corpora written here (each test says how)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import serbench
from serbench.api.errors import SerbenchError
from serbench.api.protocol import SPEAKERS_UNKNOWN, Fold, Protocol, Utterance
from serbench.cli.tables import run_notes
from serbench.report.fused_run import speaker_record
from serbench.report.leaderboard import settings
from serbench.report.results import Result
from serbench.run.datacheck import check
from serbench.run.plan import load_protocol

from conftest import run_cli
from lookalike import tiny_wav, write_emobox, write_iemocap_from_reference, write_msp_podcast

QUICK = ["train.max_epochs=1"]


def _split_corpus(root: Path, speakers: dict[str, list[str]]) -> Path:
    """A train/dev/test CSV: for each split, one utterance per listed speaker and class (a, b)."""
    rows, k = [], 0
    for split, names in speakers.items():
        for speaker in names:
            for label in "ab":
                tiny_wav(root / "wav" / f"{k}.wav", k)
                rows.append(f"wav/{k}.wav,{label},{speaker},{split}")
                k += 1
    path = root / "corpus.csv"
    path.write_text("path,label,speaker,split\n" + "\n".join(rows) + "\n")
    return path


# s2 trains and is tested: 1 of the 3 test speakers (s2, s5, s6) leaks, in the only fold ("1").
LEAKING = {"train": ["s1", "s2", "s3"], "dev": ["s4"], "test": ["s2", "s5", "s6"]}
CLEAN = {"train": ["s1", "s2", "s3"], "dev": ["s4"], "test": ["s5", "s6"]}


def test_a_leaking_speaker_is_refused_before_the_run_directory_exists(tmp_path):
    data = _split_corpus(tmp_path, LEAKING)
    message = (r"protocol csv:corpus\.csv: fold 1: speaker 's2' is in both train and test \(1 of its 3 test speakers "
               r"leak; 1 of 1 folds leak\).*-o protocol\.speaker_dependent=true")
    with pytest.raises(SerbenchError, match=message):
        serbench.run_benchmark("fbank", "superb", protocol="csv", data=data, out=tmp_path / "runs", overrides=QUICK)
    assert not (tmp_path / "runs").exists()


@pytest.mark.e2e
def test_the_cli_refuses_it_in_one_line(tmp_path):
    done = run_cli("run", "--upstream", "fbank", "--downstream", "superb", "--protocol", "csv",
                   "--data", str(_split_corpus(tmp_path, LEAKING)), "--out", str(tmp_path / "runs"), "-o", *QUICK)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("serbench: error: protocol csv:corpus.csv: fold 1: speaker 's2' is in both train and test")


@pytest.mark.e2e
def test_declared_speaker_dependent_runs_and_says_so(tmp_path):
    data = _split_corpus(tmp_path, LEAKING)
    done = run_cli("run", "--upstream", "fbank", "--downstream", "superb", "--protocol", "csv", "--data", str(data),
                   "--out", str(tmp_path / "runs"), "-o", *QUICK, "-o", "protocol.speaker_dependent=true")
    assert done.returncode == 0, done.stderr
    assert "note: speaker-dependent protocol: the same speakers are in train and test" in done.stdout
    (run_dir,) = (tmp_path / "runs").iterdir()
    data_json = json.loads((run_dir / "result.json").read_text())
    assert data_json["speakers"] == {"source": "corpus metadata", "known": True, "speaker_dependent": True}
    result = Result(data_json, run_dir)
    assert run_notes(result) == ["speaker-dependent protocol: the same speakers are in train and test"]
    assert settings(result).startswith("SPEAKER-DEPENDENT")


def test_a_leak_free_corpus_records_its_speakers_from_the_corpus(tmp_path):
    result = serbench.run_benchmark("fbank", "superb", protocol="csv", data=_split_corpus(tmp_path, CLEAN),
                          out=tmp_path / "runs", overrides=QUICK)
    assert result.data["speakers"] == {"source": "corpus metadata", "known": True, "speaker_dependent": False}
    assert run_notes(result) == [] and "SPEAKER" not in settings(result)
    assert result.summary["ua"]["speakers"] == 2  # s5 and s6


def test_a_corpus_without_speakers_records_them_as_unknown(tmp_path):
    rows = []
    for k in range(12):  # 6 train, 2 dev, 4 test; no speaker column
        tiny_wav(tmp_path / "wav" / f"{k}.wav", k)
        rows.append(f"wav/{k}.wav,{'ab'[k % 2]},{'train' if k < 6 else 'dev' if k < 8 else 'test'}")
    (tmp_path / "corpus.csv").write_text("path,label,split\n" + "\n".join(rows) + "\n")
    protocol = load_protocol("csv", tmp_path / "corpus.csv")
    assert protocol.speaker_source == SPEAKERS_UNKNOWN and not protocol.speakers_known
    assert protocol.shared_speakers("train", "test") == []  # pseudo-speakers cannot leak: say nothing
    result = serbench.run_benchmark("fbank", "superb", protocol="csv", data=tmp_path / "corpus.csv", out=tmp_path / "runs",
                          overrides=QUICK)
    assert result.data["speakers"] == {"source": SPEAKERS_UNKNOWN, "known": False, "speaker_dependent": False}
    assert run_notes(result) == ["speakers unknown (each utterance its own pseudo-speaker): speaker-level "
                                 "statistics are utterance-level"]
    assert "speakers unknown" in settings(result)


@pytest.mark.e2e
def test_data_check_reports_the_leak(tmp_path):
    data = _split_corpus(tmp_path, LEAKING)
    report = check(load_protocol("csv", data))
    assert not report.ok
    assert any("speaker 's2' is in both train and test" in p for p in report.problems)
    done = run_cli("data", "check", "csv", "--data", str(data))
    assert done.returncode == 1 and "speaker 's2' is in both train and test" in done.stderr
    assert "1 problem(s) above: a run on this corpus would be refused" in done.stderr  # no count differs
    assert "note: speakers: corpus metadata" in done.stdout
    declared = check(load_protocol("csv", data, ["protocol.speaker_dependent=true"]))
    assert declared.ok and "declared speaker-dependent: 1 of 1 folds share speakers between train and test" in declared.notes


def test_the_leak_is_reported_even_when_another_problem_comes_first(tmp_path):
    """Fold 1 has no dev utterance (check_usable stops there), yet s1's leak into it is listed too."""
    rows = []
    for k, (label, speaker, fold) in enumerate([("a", "s1", "1"), ("a", "s1", "2"), ("b", "s2", "2")]):
        tiny_wav(tmp_path / "wav" / f"{k}.wav", k)
        rows.append(f"wav/{k}.wav,{label},{speaker},{fold}")
    (tmp_path / "corpus.csv").write_text("path,label,speaker,fold\n" + "\n".join(rows) + "\n")
    problems = check(load_protocol("csv", tmp_path / "corpus.csv")).problems
    assert len(problems) == 2 and "fold 1 has no dev utterance" in problems[0]
    assert "fold 1: speaker 's1' is in both train and test" in problems[1]


def test_a_dev_speaker_in_test_is_warned_not_refused(tmp_path):
    data = _split_corpus(tmp_path, {"train": ["s1", "s2"], "dev": ["s3", "s4"], "test": ["s4", "s5"]})
    protocol = load_protocol("csv", data)
    with pytest.warns(UserWarning, match=r"fold 1: speaker 's4' is in both dev and test \(1 of its 2 test speakers; 1 of 1 folds\)"):
        protocol.check_usable()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # data check says it once, as a note
        report = check(protocol)
    assert report.ok and any("'s4' is in both dev and test" in n for n in report.notes)


def _fold_corpus(root: Path, speaker_of) -> Protocol:
    rows = []
    for k in range(24):
        tiny_wav(root / "wav" / f"{k}.wav", k)
        rows.append(f"wav/{k}.wav,{'abcd'[k % 4]},{speaker_of(k)},{1 + k % 3}")
    (root / "corpus.csv").write_text("path,label,speaker,fold\n" + "\n".join(rows) + "\n")
    return load_protocol("csv", root / "corpus.csv", ["protocol.dev=speaker"])


def test_leave_one_fold_out_counts_every_leaking_fold(tmp_path):
    """Speaker s{k % 6} stays in fold 1 + k % 3 (k % 6 fixes k % 3); utterance 23 (fold 3) is
    given to s0 (fold 1): s0 is then tested in folds 1 and 3 and trained on in the other."""
    clean = _fold_corpus(tmp_path / "clean", lambda k: f"s{k % 6}")
    clean.check_usable()
    assert clean.shared_speakers("train", "test") == [] and clean.shared_speakers("dev", "test") == []
    leaking = _fold_corpus(tmp_path / "leaking", lambda k: "s0" if k == 23 else f"s{k % 6}")
    train_test, dev_test = leaking.shared_speakers("train", "test"), leaking.shared_speakers("dev", "test")
    # the fold testing one part of s0 holds the other part in train or in dev (a whole speaker)
    assert sorted(train_test + dev_test) == [("1", ["s0"]), ("3", ["s0"])]
    if train_test:
        with pytest.raises(SerbenchError, match=rf"fold {train_test[0][0]}: speaker 's0' .* {len(train_test)} of 3 folds"):
            leaking.check_usable()


def test_a_plugin_protocol_declares_it(tmp_path):
    """Two speakers, each in train and test of the one fold: refused, unless declared."""
    for k in range(8):
        tiny_wav(tmp_path / f"{k}.wav", k)
    utterances = [Utterance(str(k), tmp_path / f"{k}.wav", "ab"[k % 2], f"s{k // 4}") for k in range(8)]
    fold = Fold("only", ("0", "1", "4", "5"), ("2", "6"), ("3", "7"))
    with pytest.raises(SerbenchError, match=r"fold only: speaker 's0' is in both train and test \(2 of its 2 test"):
        Protocol("p", utterances, [fold], ["a", "b"]).check_usable()
    declared = Protocol("p", utterances, [fold], ["a", "b"], speaker_dependent=True)
    declared.check_usable()
    assert declared.speaker_record() == {"source": "corpus metadata", "known": True, "speaker_dependent": True}


def test_builtin_synthetic_and_msp_podcast_protocols_pass(tmp_path):
    load_protocol("synthetic", overrides={"per_class": 1}).check_usable()
    # MSP-Podcast's partitions are speaker-independent; Unknown speakers are one pseudo-speaker each
    rows, n = [], 0
    for split, base in (("Train", 100), ("Development", 200), ("Test1", 300)):
        for code in "ASHUFDCN":
            for j in range(3):
                speaker = "Unknown" if j == 2 else str(base + n % 3)
                gender = "Unknown" if speaker == "Unknown" else "Female"
                rows.append([f"MSP-PODCAST_{n:04d}_0000.wav", code, "4", "4", "4", speaker, gender, split])
                n += 1
    write_msp_podcast(tmp_path, rows)
    msp = load_protocol("msp_podcast", tmp_path)
    msp.check_usable()
    unknown = [u.speaker for u in msp.utterances.values() if u.speaker.startswith("unknown-")]
    assert len(unknown) == len(set(unknown)) == 24  # 8 classes x 3 partitions, one pseudo-speaker each


def test_fusion_carries_the_least_independent_record():
    def run(**speakers):
        return Result({"speakers": speakers}, Path("."))

    corpus = {"source": "corpus metadata", "known": True, "speaker_dependent": False}
    assert speaker_record([run(**corpus), run(**corpus)]) == corpus
    declared = {**corpus, "speaker_dependent": True}
    assert speaker_record([run(**corpus), run(**declared)]) == declared
    assert speaker_record([run(**corpus), Result({}, Path("."))]) is None  # a run made before speakers were kept


def test_builtin_iemocap_and_emobox_protocols_pass(tmp_path):
    """Sessions (5-fold, EmoBox) and speakers (LOSO) are disjoint between train, dev and test."""
    root = tmp_path / "EmoBox" / "downloads" / "iemocap"
    records = write_iemocap_from_reference(root)
    for name, options in (("iemocap_5fold", {}), ("iemocap_5fold", {"dev": "speaker"}), ("iemocap_loso10", {})):
        protocol = load_protocol(name, root, options)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no dev/test sharing either
            protocol.check_usable()
        assert protocol.speaker_record() == {"source": "corpus metadata", "known": True, "speaker_dependent": False}
    data = tmp_path / "EmoBox" / "data" / "iemocap"
    write_emobox(data, records, with_valid=False)
    load_protocol("emobox", data, {"audio_root": str(tmp_path / "EmoBox")}).check_usable()
