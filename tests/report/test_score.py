"""``serbench score``: a run's own predictions give back its result.json summary exactly, a
file written by hand is scored as scikit-learn scores it, and each bad file is one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

import serbench
from serbench.cli.main import main
from serbench.report.score import FOLDS_WITHOUT_SPEAKERS_NOTE, SPEAKERS_UNKNOWN_NOTE, score_file

from lookalike import tiny_wav

FAST = ["protocol.per_class=4", "train.max_epochs=3"]
SKLEARN = {"ua": balanced_accuracy_score, "wa": accuracy_score,
           "macro_f1": lambda y, p: f1_score(y, p, average="macro")}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real small run with two seeds: 5 folds x 2 seeds, 10 speakers, 4 classes."""
    out = tmp_path_factory.mktemp("runs")
    return serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=out, seeds=[0, 1], overrides=FAST).run_dir


def _score(args: list[str], tmp_path, capsys) -> tuple[list[dict], str]:
    target = tmp_path / "scores.json"
    assert main(["score", *args, "--json", str(target)]) == 0
    return json.loads(target.read_text()), capsys.readouterr().out


def test_a_runs_predictions_give_back_its_summary_exactly(run_dir, tmp_path, capsys):
    result = json.loads((run_dir / "result.json").read_text())
    (scored,), printed = _score([str(run_dir / "predictions.csv")], tmp_path, capsys)
    assert scored["summary"] == result["summary"]  # every metric's mean, std, ci95, ci95_bootstrap, speakers
    assert scored["overall"] == result["overall"]
    assert scored["classes"] == result["classes"] == ["neutral", "happy", "angry", "sad"]
    assert scored["folds"] == [{k: f[k] for k in ("fold", "seed", "n_test", "metrics")} for f in result["folds"]]
    assert len(scored["folds"]) == 10 and scored["speakers"]["known"] and scored["speakers"]["count"] == 10
    assert f"{result['summary']['ua']['mean'] * 100:.2f}" in printed and "95% CI (t, folds)" in printed


def test_a_copy_without_its_result_json_keeps_the_class_order_of_its_prob_columns(run_dir, tmp_path):
    copy = tmp_path / "elsewhere.csv"
    shutil.copy(run_dir / "predictions.csv", copy)
    result = json.loads((run_dir / "result.json").read_text())
    scored = score_file(copy)
    assert scored["classes"] == result["classes"]
    assert scored["summary"] == result["summary"] and scored["overall"] == result["overall"]


def test_without_speakers_each_utterance_is_its_own_cluster_and_the_output_says_so(run_dir, tmp_path):
    frame = pd.read_csv(run_dir / "predictions.csv", dtype=str).drop(columns=["speaker"])
    bare = tmp_path / "no_speakers.csv"
    frame.to_csv(bare, index=False)
    result = json.loads((run_dir / "result.json").read_text())
    scored = score_file(bare)
    assert scored["speakers"] == {"source": "unknown: no speaker column, one pseudo-speaker per utterance",
                                  "known": False, "count": frame["utterance_id"].nunique()}
    assert frame["utterance_id"].nunique() == 160 and len(frame) == 320  # each utterance once per seed
    # utterances are nested in folds, so the interval resamples folds and the note says what that assumes
    assert FOLDS_WITHOUT_SPEAKERS_NOTE in scored["notes"] and SPEAKERS_UNKNOWN_NOTE not in scored["notes"]
    for metric, entry in scored["summary"].items():  # the estimates do not depend on who spoke
        assert (entry["mean"], entry["std"], entry["ci95"]) == tuple(result["summary"][metric][k]
                                                                     for k in ("mean", "std", "ci95"))


def test_a_run_whose_speakers_are_unknown_is_scored_as_the_run_scored_it(tmp_path, capsys):
    """A CSV corpus without speakers: the run writes pseudo-speakers into its speaker column and
    records them as unknown; scoring its file must not take them for real speakers."""
    rows = []
    for k in range(24):
        tiny_wav(tmp_path / "wav" / f"{k}.wav", k)
        rows.append(f"wav/{k}.wav,{'abcd'[k % 4]},{1 + k % 3}")
    (tmp_path / "corpus.csv").write_text("path,label,fold\n" + "\n".join(rows) + "\n")
    run = serbench.run_benchmark("fbank", "superb", protocol="csv", data=str(tmp_path / "corpus.csv"), out=tmp_path / "runs",
                       overrides=["train.max_epochs=2"])
    result = json.loads((run.run_dir / "result.json").read_text())
    assert result["speakers"]["known"] is False
    (scored,), printed = _score([str(run.run_dir / "predictions.csv")], tmp_path, capsys)
    assert scored["summary"] == result["summary"] and scored["overall"] == result["overall"]
    assert scored["speakers"] == {**result["speakers"], "count": 24}
    assert FOLDS_WITHOUT_SPEAKERS_NOTE in scored["notes"] and "note: speakers unknown" in printed


HAND = """fold,seed,utterance_id,speaker,label,prediction,notes
A,0,u1,s1,ang,ang,x
A,0,u2,s1,ang,hap,x
A,0,u3,s2,hap,hap,x
A,0,u4,s2,hap,hap,x
A,0,u5,s3,neu,ang,x
A,1,u1,s1,ang,ang,x
A,1,u2,s1,ang,ang,x
A,1,u3,s2,hap,neu,x
A,1,u4,s2,hap,hap,x
A,1,u5,s3,neu,neu,x

B,0,u6,s4,ang,hap,x
B,0,u7,s4,neu,neu,x
B,0,u8,s5,hap,hap,x
B,0,u9,s5,neu,neu,x
B,1,u6,s4,ang,ang,x
B,1,u7,s4,neu,hap,x
B,1,u8,s5,hap,hap,x
B,1,u9,s5,neu,neu,x
"""


def test_a_hand_written_file_is_scored_as_scikit_learn_scores_it(tmp_path, capsys):
    path = tmp_path / "hand.csv"
    path.write_text(HAND)
    frame = pd.read_csv(path)
    (scored,), printed = _score([str(path)], tmp_path, capsys)
    assert scored["classes"] == ["ang", "hap", "neu"]  # the sorted union
    # fold A seed 0 by hand: recall ang 1/2, hap 2/2, neu 0/1; F1 ang 2/4, hap 4/5, neu 0
    first = scored["folds"][0]
    assert (first["fold"], first["seed"], first["n_test"]) == ("A", 0, 5)
    assert first["metrics"] == pytest.approx({"ua": 0.5, "wa": 0.6, "macro_f1": (0.5 + 0.8 + 0.0) / 3})
    assert [(f["fold"], f["seed"]) for f in scored["folds"]] == [("A", 0), ("A", 1), ("B", 0), ("B", 1)]
    for job in scored["folds"]:
        part = frame[(frame["fold"] == job["fold"]) & (frame["seed"] == job["seed"])]
        assert job["n_test"] == len(part)
        for metric, reference in SKLEARN.items():
            assert job["metrics"][metric] == pytest.approx(reference(part["label"], part["prediction"]))
    for metric, reference in SKLEARN.items():  # the table's statistic: mean over seeds, then over folds
        per_fold = [np.mean([reference(p["label"], p["prediction"]) for _, p in f.groupby("seed")])
                    for _, f in frame.groupby("fold")]
        entry = scored["summary"][metric]
        assert entry["mean"] == pytest.approx(np.mean(per_fold))
        assert entry["std"] == pytest.approx(np.std(per_fold, ddof=1))
        lo, hi = scipy_stats.t.interval(0.95, 1, loc=np.mean(per_fold), scale=scipy_stats.sem(per_fold))
        assert entry["ci95"] == pytest.approx([max(lo, 0.0), min(hi, 1.0)])
    assert scored["overall"]["confusion"]["counts"] == confusion_matrix(
        frame["label"], frame["prediction"], labels=["ang", "hap", "neu"]).tolist()
    assert scored["speakers"] == {"source": "the file's speaker column", "known": True, "count": 5}
    assert "ignored columns: notes" in scored["notes"] and "note: ignored columns: notes" in printed


def test_bare_minimum_columns_mean_one_fold_one_seed(tmp_path):
    path = tmp_path / "bare.csv"
    path.write_text("utterance_id,label,prediction\na,x,x\nb,x,y\nc,y,y\nd,y,y\n")
    scored = score_file(path)
    assert [(f["fold"], f["seed"], f["n_test"]) for f in scored["folds"]] == [("all", 0, 4)]
    assert scored["summary"]["wa"]["mean"] == 0.75 and scored["summary"]["wa"]["ci95"] is None
    assert scored["summary"]["ua"]["mean"] == pytest.approx(balanced_accuracy_score(list("xxyy"), list("xyyy")))
    assert any("no fold column" in n for n in scored["notes"]) and any("no seed column" in n for n in scored["notes"])
    assert SPEAKERS_UNKNOWN_NOTE in scored["notes"]  # one test split: the clusters are the utterances


def test_classes_option_sets_the_order_and_adds_a_class_never_seen(tmp_path, capsys):
    path = tmp_path / "hand.csv"
    path.write_text(HAND)
    (scored,), _ = _score([str(path), "--classes", "neu,hap,ang,sad"], tmp_path, capsys)
    frame = pd.read_csv(path)
    assert scored["overall"]["confusion"]["labels"] == ["neu", "hap", "ang", "sad"]
    assert scored["overall"]["confusion"]["counts"] == confusion_matrix(
        frame["label"], frame["prediction"], labels=["neu", "hap", "ang", "sad"]).tolist()
    assert scored["overall"]["per_class"]["sad"] == {"recall": 0.0, "f1": 0.0, "support": 0}
    plain = score_file(path)
    for metric in SKLEARN:  # a class nobody said nor predicted moves no score
        assert scored["summary"][metric]["mean"] == pytest.approx(plain["summary"][metric]["mean"])
    assert any("no test utterance of sad" in n for n in scored["notes"])


def test_several_files_are_scored_independently_in_the_order_given(run_dir, tmp_path, capsys):
    hand = tmp_path / "hand.csv"
    hand.write_text(HAND)
    files = [str(hand), str(run_dir / "predictions.csv"), str(hand)]
    scored, _ = _score(files, tmp_path, capsys)
    assert [s["file"] for s in scored] == files
    assert scored[0] == scored[2] == score_file(hand)
    assert scored[1]["summary"] == json.loads((run_dir / "result.json").read_text())["summary"]


def test_scoring_imports_no_torch(tmp_path):
    path = tmp_path / "hand.csv"
    path.write_text(HAND)
    probe = ("import sys; from serbench.cli.main import main; code = main(['score', sys.argv[1]]); "
             "print('torch' in sys.modules, code)")
    done = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True)
    assert done.stdout.split()[-2:] == ["False", "0"], done.stderr


GOOD = "fold,seed,utterance_id,speaker,label,prediction\n1,0,u1,s1,a,a\n1,0,u2,s2,b,a\n"


@pytest.mark.parametrize("content, where, fragment", [
    ("fold,seed,utterance_id,speaker,prediction\n1,0,u1,s1,a\n", ":1:", "no 'label' column"),
    ("utterance_id,label,prediction\nu1,a,a\nu2,,a\n", ":3:", "empty label"),
    ("utterance_id,label,prediction\nu1,a,a\n\nu2,b,\n", ":4:", "empty prediction"),
    ("utterance_id,speaker,label,prediction\nu1,s1,a,a\nu2,,b,a\n", ":3:", "empty speaker (leave the column out"),
    ("seed,utterance_id,label,prediction\n0,u1,a,a\nzero,u2,b,a\n", ":3:", "seed 'zero' is not an integer"),
    (GOOD + "1,0,u1,s1,a,b\n", ":4:", "utterance 'u1' of fold '1' seed 0 is already on line 2"),
    ("", "", "empty file"),
    ("utterance_id,label,prediction\n", "", "a header and no rows"),
    ("utterance_id,label,label,prediction\nu1,a,a,a\n", ":1:", "column 'label' appears twice"),
    ("utterance_id,label,prediction\nu1,a,a,extra\n", ":2:", "4 fields, the header has 3"),
    ("utterance_id,label,prediction\nu1,a\x00b,a\n", ":2:", "NUL"),
    ('{"predictions": [1, 2]}\n', ":1:", "no 'utterance_id' column"),
])
def test_bad_rows_are_one_line_naming_the_file_and_line(content, where, fragment, tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["score", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"serbench: error: {path}{where}") and fragment in err, err


def test_a_binary_file_a_folder_and_an_unknown_class_are_refused_by_name(tmp_path, capsys):
    picture = tmp_path / "figure.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    for args, expected in (
        ([str(picture)], f"{picture}:1: byte 0x89 is not UTF-8"),
        ([str(tmp_path)], f"{tmp_path}: is a folder; give a predictions file"),
        ([str(good), "--classes", "a,c"], f"{good}:3: label 'b' is not one of the classes from --classes (a, c)"),
        ([str(good), "--classes", "b,c"], f"{good}:2: label 'a' is not one of the classes from --classes (b, c)"),
        ([str(good), "--classes", "a,b,a"], "--classes 'a,b,a': 'a' is given twice"),
        ([str(good), str(tmp_path / "missing.csv")], f"{tmp_path / 'missing.csv'}: no such file"),
    ):
        assert main(["score", *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, err


def test_a_prediction_outside_the_given_classes_is_refused_naming_its_line(tmp_path, capsys):
    path = tmp_path / "p.csv"
    path.write_text("utterance_id,label,prediction\nu1,a,a\nu2,b,c\n")
    assert main(["score", str(path), "--classes", "a,b"]) == 2
    assert f"{path}:3: prediction 'c' is not one of the classes from --classes (a, b)" in capsys.readouterr().err
