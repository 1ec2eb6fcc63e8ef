"""IEMOCAP protocols on a look-alike tree built from the real utterance list."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from serbench.api.errors import SerbenchError
from serbench.cli.main import main
from serbench.run.plan import load_protocol
from serbench_plugins.protocols.iemocap import COUNTS_MERGED, SPEAKERS

from conftest import REFERENCE, run_cli
from lookalike import evaluation_line, tiny_wav, write_iemocap, write_iemocap_from_reference


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("downloads") / "iemocap"
    records = write_iemocap_from_reference(root)
    return root, records


def test_5fold_reproduces_the_published_counts_and_the_reference_ids(tree):
    root, records = tree
    protocol = load_protocol("iemocap_5fold", root)
    assert protocol.counts() == COUNTS_MERGED
    assert set(protocol.utterances) == {r["key"].removeprefix("iemocap-") for r in records}
    assert protocol.classes == ["neutral", "happy", "angry", "sad"]
    raw = {r["key"].removeprefix("iemocap-"): r["emo"] for r in records}
    for uid, u in protocol.utterances.items():  # exc merged into happy, others kept as they are
        assert u.label == {"neu": "neutral", "hap": "happy", "exc": "happy", "ang": "angry", "sad": "sad"}[raw[uid]]
        assert u.transcript == f"words of {uid}."
        assert u.attributes == {"valence": 0.375, "arousal": 0.5, "dominance": 0.625}


def test_5fold_folds_are_sessions_with_a_stratified_dev(tree):
    protocol = load_protocol("iemocap_5fold", tree[0])
    sessions = Counter(u.session for u in protocol.utterances.values())
    for k, fold in enumerate(protocol.folds, start=1):
        assert fold.name == str(k)
        assert {protocol.utterances[i].session for i in fold.test} == {str(k)}
        assert len(fold.test) == sessions[str(k)]
        assert not set(fold.train) & set(fold.dev) and not (set(fold.train) | set(fold.dev)) & set(fold.test)
        assert len(fold.train) + len(fold.dev) == 5531 - sessions[str(k)]
        rest = Counter(protocol.utterances[i].label for i in fold.train + fold.dev)
        dev = Counter(protocol.utterances[i].label for i in fold.dev)
        assert dev == {label: round(0.2 * n) for label, n in rest.items()}


def test_5fold_dev_can_be_one_training_speaker(tree):
    protocol = load_protocol("iemocap_5fold", tree[0], ["protocol.dev=speaker"])
    for k, fold in enumerate(protocol.folds, start=1):
        dev_speakers = {protocol.utterances[i].speaker for i in fold.dev}
        assert len(dev_speakers) == 1 and not dev_speakers.pop().startswith(f"0{k}")
        assert not {protocol.utterances[i].speaker for i in fold.train} & {protocol.utterances[i].speaker for i in fold.dev}


def test_dropping_excited_leaves_4490(tree):
    protocol = load_protocol("iemocap_5fold", tree[0], {"merge_excited": False})
    assert len(protocol.utterances) == 4490
    assert protocol.counts()["label:happy"] == 595


def test_loso10_is_8_1_1_in_speaker_order(tree):
    protocol = load_protocol("iemocap_loso10", tree[0])
    assert [f.name for f in protocol.folds] == list(SPEAKERS) == ["01F", "01M", "02F", "02M", "03F", "03M", "04F", "04M", "05F", "05M"]
    for fold in protocol.folds:
        partner = fold.name[:2] + ("M" if fold.name[2] == "F" else "F")
        assert {protocol.utterances[i].speaker for i in fold.test} == {fold.name}
        assert {protocol.utterances[i].speaker for i in fold.dev} == {partner}
        assert len({protocol.utterances[i].speaker for i in fold.train}) == 8
        assert len(fold.test) == COUNTS_MERGED[f"speaker:{fold.name}"]
        assert len(fold.dev) == COUNTS_MERGED[f"speaker:{partner}"]


@pytest.mark.e2e
def test_data_check_and_splits_commands(tree, tmp_path):
    root, _ = tree
    done = run_cli("data", "check", "iemocap_5fold", "--data", str(root))
    assert done.returncode == 0, done.stderr
    assert "corpus matches the protocol" in done.stdout and "MISMATCH" not in done.stdout
    target = tmp_path / "splits.jsonl"
    done = run_cli("splits", "iemocap_loso10", "--data", str(root), "--out", str(target))
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(rows) == 10 * 5531
    assert set(rows[0]) == {"fold", "split", "utterance_id", "label", "speaker", "gender", "session"}
    first = [r for r in rows if r["fold"] == "01F"]
    assert Counter(r["split"] for r in first) == {"test": 528, "dev": 557, "train": 5531 - 1085}


@pytest.mark.e2e
def test_data_check_reports_a_mismatch_with_the_published_counts(tmp_path):
    write_iemocap(tmp_path, [("Ses01F_impro01_F000", "neu"), ("Ses01F_impro01_M000", "ang")])
    done = run_cli("data", "check", "iemocap_5fold", "--data", str(tmp_path))
    assert done.returncode == 1
    assert "MISMATCH" in done.stdout and "differs from the published definition" in done.stderr


@pytest.mark.e2e
def test_missing_corpus_location_says_how_to_set_one():
    done = run_cli("run", "--upstream", "fbank", "--downstream", "superb")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "serbench config set data.iemocap PATH" in done.stderr and "--protocol synthetic" in done.stderr
    assert "SERBENCH_DATA_IEMOCAP" in done.stderr
    done = run_cli("run", "--upstream", "fbank", "--downstream", "superb", "--data", "/no/such/folder")
    assert done.returncode == 2 and "data.iemocap: /no/such/folder does not exist" in done.stderr


def test_saved_location_is_used(tmp_path, capsys):
    write_iemocap(tmp_path, [("Ses01F_impro01_F000", "neu")])
    assert main(["config", "set", "data.iemocap", str(tmp_path)]) == 0
    try:
        capsys.readouterr()
        assert main(["splits", "iemocap_5fold"]) == 0
        assert json.loads(capsys.readouterr().out.splitlines()[0])["utterance_id"] == "Ses01F_impro01_F000"
    finally:
        main(["config", "unset", "data.iemocap"])


def _single_dialog(tmp_path, text: str):
    write_iemocap(tmp_path, [("Ses01F_impro01_F000", "neu")], distractors=False)
    path = tmp_path / "Session1" / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt"
    path.write_text(text)
    return path


def test_an_unparsable_utterance_line_names_file_and_line(tmp_path):
    path = _single_dialog(tmp_path, "% header\n\n" + evaluation_line(1.0, "Ses01F_impro01_F000", "neu") + "\n[2.0 - x]\tbroken\n")
    with pytest.raises(SerbenchError, match=rf"{path}:4: cannot parse utterance line"):
        load_protocol("iemocap_5fold", tmp_path)


def test_a_byte_order_mark_does_not_hide_the_first_utterance(tmp_path):
    """Saved by an editor that writes a BOM, the first line was not an utterance line any more."""
    _single_dialog(tmp_path, "\ufeff" + evaluation_line(1.0, "Ses01F_impro01_F000", "neu") + "\n")
    assert list(load_protocol("iemocap_5fold", tmp_path).utterances) == ["Ses01F_impro01_F000"]


def test_an_unknown_label_code_is_reported(tmp_path):
    path = _single_dialog(tmp_path, evaluation_line(1.0, "Ses01F_impro01_F000", "joy") + "\n")
    with pytest.raises(SerbenchError, match=rf"{path}:1: unknown label code 'joy'"):
        load_protocol("iemocap_5fold", tmp_path)


def test_a_duplicate_utterance_id_names_both_places(tmp_path):
    line = evaluation_line(1.0, "Ses01F_impro01_F000", "neu")
    path = _single_dialog(tmp_path, line + "\n" + line + "\n")
    with pytest.raises(SerbenchError, match=rf"{path}:2: duplicate utterance id Ses01F_impro01_F000 \(first at {path}:1\)"):
        load_protocol("iemocap_5fold", tmp_path)


def test_a_missing_wav_and_a_missing_session_are_named(tmp_path):
    write_iemocap(tmp_path, [("Ses01F_impro01_F000", "neu"), ("Ses02M_impro05a_M001", "sad")], distractors=False)
    wav = tmp_path / "Session2" / "sentences" / "wav" / "Ses02M_impro05a" / "Ses02M_impro05a_M001.wav"
    wav.unlink()
    with pytest.raises(SerbenchError, match=rf"{wav}: audio file missing \(listed at .*Ses02M_impro05a.txt:3\)"):
        load_protocol("iemocap_5fold", tmp_path)
    tiny_wav(wav, seed=0)
    (tmp_path / "Session4" / "dialog" / "EmoEvaluation").rmdir()
    with pytest.raises(SerbenchError, match=r"Session4/dialog/EmoEvaluation: missing"):
        load_protocol("iemocap_loso10", tmp_path)


@pytest.mark.skipif(not (REFERENCE / "iemocap").is_dir(), reason="../shared/reference/iemocap is absent here: "
                    "the compact copy in tests/data is checked wherever the original is present (CI)")
def test_reference_copy_equals_the_shared_original():
    from lookalike import reference_records

    original = (REFERENCE / "iemocap" / "emobox_iemocap.jsonl").read_text().splitlines()
    assert [json.dumps(r) for r in reference_records()] == [line for line in original if line.strip()]
