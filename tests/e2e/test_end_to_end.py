"""Whole runs on the embedded corpus, through the CLI and the Python API."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import serbench
from serbench.report.leaderboard import COLUMNS
from serbench.report.results import SCHEMA

from conftest import run_cli

pytestmark = pytest.mark.e2e
FAST = ["protocol.per_class=4", "train.max_epochs=3"]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """The README's main job, as a user types it."""
    out = tmp_path_factory.mktemp("runs")
    done = run_cli("run", "--upstream", "fbank", "--downstream", "superb", "--protocol", "synthetic",
                   "--out", str(out))
    assert done.returncode == 0, done.stderr
    (run_dir,) = out.iterdir()
    return done, run_dir


def _interval(value):
    assert isinstance(value, list) and len(value) == 2 and 0.0 <= value[0] <= value[1] <= 1.0
    return value


def test_result_follows_the_schema(cli_run):
    done, run_dir = cli_run
    assert {p.name for p in run_dir.iterdir()} >= {"result.json", "predictions.csv", "config.json", "run.log", "folds"}
    r = json.loads((run_dir / "result.json").read_text())
    assert r["schema"] == SCHEMA and r["run_id"] == run_dir.name
    assert r["serbench_version"] == serbench.__version__
    assert set(r["config"]) >= {"upstream", "downstream", "pooling", "loss", "protocol", "seeds", "overrides"}
    assert (r["config"]["upstream"], r["config"]["downstream"], r["config"]["pooling"], r["config"]["loss"]) == (
        "fbank", "superb", "mean", "ce")
    assert r["plugins"] == {"synthetic": "1", "fbank": "1", "superb": "1", "mean": "1", "ce": "1"}
    assert set(r["environment"]) >= {"python", "torch", "device"}
    assert r["classes"] == ["neutral", "happy", "angry", "sad"]
    assert [(f["fold"], f["seed"]) for f in r["folds"]] == [(str(k), 0) for k in range(1, 6)]
    for fold in r["folds"]:
        assert fold["n_train"] + fold["n_dev"] + fold["n_test"] == 640 and fold["n_test"] == 128
        assert all(0.0 <= fold["metrics"][m] <= 1.0 for m in COLUMNS)
    for metric in COLUMNS:
        entry = r["summary"][metric]
        values = [f["metrics"][metric] for f in r["folds"]]
        assert entry["mean"] == pytest.approx(sum(values) / len(values))
        assert _interval(entry["ci95"])[0] < entry["mean"] < entry["ci95"][1]
        lo, hi = _interval(entry["ci95_bootstrap"])
        assert (lo + hi) / 2 == pytest.approx(entry["mean"])  # each interval beside its own estimate
        assert entry["speakers"] == 10
    assert set(r["timing"]) >= {"total_s", "features_s", "train_s"}
    # the terminal table
    assert "95% CI (t, folds)" in done.stdout and "result:" in done.stdout
    assert f"{r['summary']['ua']['mean'] * 100:.2f}" in done.stdout


def test_predictions_file_matches_the_folds(cli_run):
    _, run_dir = cli_run
    frame = pd.read_csv(run_dir / "predictions.csv", dtype={"fold": str, "speaker": str})
    classes = ["neutral", "happy", "angry", "sad"]
    assert list(frame.columns) == ["fold", "seed", "utterance_id", "speaker", "gender", "label", "prediction"] + [
        f"prob_{c}" for c in classes]
    assert (frame["gender"] == frame["speaker"].str[-1]).all()  # the synthetic corpus's speakers are 01F, 01M, ...
    assert len(frame) == 640 and frame["utterance_id"].is_unique
    probs = frame[[f"prob_{c}" for c in classes]].to_numpy()
    assert probs.sum(1) == pytest.approx(1.0, abs=1e-4)
    assert (frame["prediction"] == [classes[k] for k in probs.argmax(1)]).all()
    result = json.loads((run_dir / "result.json").read_text())
    for fold in result["folds"]:
        part = frame[frame["fold"] == fold["fold"]]
        assert (part["label"] == part["prediction"]).mean() == pytest.approx(fold["metrics"]["wa"])
        assert set(part["speaker"]) == {f"{int(fold['fold']):02d}F", f"{int(fold['fold']):02d}M"}


def test_overall_per_class_and_confusion_match_sklearn(cli_run):
    from sklearn.metrics import confusion_matrix, recall_score

    _, run_dir = cli_run
    frame = pd.read_csv(run_dir / "predictions.csv")
    overall = json.loads((run_dir / "result.json").read_text())["overall"]
    labels = overall["confusion"]["labels"]
    assert (overall["confusion"]["rows"], overall["confusion"]["columns"]) == ("reference label", "predicted label")
    assert overall["confusion"]["counts"] == confusion_matrix(frame["label"], frame["prediction"], labels=labels).tolist()
    recalls = recall_score(frame["label"], frame["prediction"], labels=labels, average=None)
    assert [overall["per_class"][c]["recall"] for c in labels] == pytest.approx(recalls.tolist())


def test_groups_and_calibration_are_sklearns_on_the_predictions(cli_run):
    """result.json's per-gender UA is balanced accuracy on each sex's rows (per fold, then the
    mean), F - M their difference; its NLL is log_loss per fold, averaged; the table shows both."""
    from sklearn.metrics import balanced_accuracy_score, log_loss

    done, run_dir = cli_run
    frame = pd.read_csv(run_dir / "predictions.csv", dtype={"fold": str})
    result = json.loads((run_dir / "result.json").read_text())
    classes = result["classes"]
    ua = {}
    for sex in ("F", "M"):
        ua[sex] = np.mean([balanced_accuracy_score(part["label"], part["prediction"])
                           for _, part in frame[frame["gender"] == sex].groupby("fold")])
        assert result["groups"]["gender"]["groups"][sex]["ua"]["mean"] == pytest.approx(ua[sex])
    assert result["groups"]["gender"]["difference"]["ua"]["mean"] == pytest.approx(ua["F"] - ua["M"])
    assert result["groups"]["gender"]["fairness"]["threshold"] == 0.075
    probs = frame[[f"prob_{c}" for c in classes]].to_numpy()
    frame["y"], frame["row"] = frame["label"].map(classes.index), range(len(frame))
    nll = np.mean([log_loss(part["y"], probs[part["row"]] / probs[part["row"]].sum(1, keepdims=True),
                            labels=range(len(classes))) for _, part in frame.groupby("fold")])
    assert result["calibration"]["nll"]["mean"] == pytest.approx(nll, abs=1e-6)
    assert result["calibration"]["temperature_scaling"] == {"enabled": False}
    assert "UA F - M" in done.stdout and "ECE %" in done.stdout and "fairness (audEERING)" in done.stdout


def test_embedded_corpus_is_learnable(cli_run):
    _, run_dir = cli_run
    assert json.loads((run_dir / "result.json").read_text())["summary"]["ua"]["mean"] >= 0.70


def test_embedded_corpus_does_not_leak(cli_run, tmp_path):
    result = serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=tmp_path,
                          overrides=["train.shuffle_labels=true"])
    assert abs(result.summary["ua"]["mean"] - 0.25) <= 0.10
    # the control run is marked as such in the leaderboard, beside the real run
    (tmp_path / "unfinished").mkdir()  # a run folder without result.json: listed, not fatal
    done = run_cli("leaderboard", str(cli_run[1]), str(result.run_dir), str(tmp_path / "unfinished"))
    assert done.returncode == 0, done.stderr
    assert f"skipped {tmp_path / 'unfinished'}: no result.json" in done.stderr
    control = next(line for line in done.stdout.splitlines() if result.run_id in line)
    # (the override is recorded as its parameter's type, a bool, however it was typed: issue 22)
    assert "CONTROL: shuffled training labels" in control and "train.shuffle_labels=True" in control
    real = next(line for line in done.stdout.splitlines() if cli_run[1].name in line)
    assert "CONTROL" not in real and "| defaults " in real


def test_same_seed_gives_the_same_metrics(tmp_path):
    a = serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=tmp_path / "a", seeds=[7], overrides=FAST)
    b = serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=tmp_path / "b", seeds=[7], overrides=FAST)
    assert a.data["folds"] == b.data["folds"]
    assert (a.run_dir / "predictions.csv").read_text() == (b.run_dir / "predictions.csv").read_text()


def test_rerun_resumes_and_recomputes_only_missing_jobs(tmp_path):
    first = serbench.run_benchmark("tiny", "superb", protocol="synthetic", out=tmp_path, seeds=[0, 1], overrides=FAST)
    folds = first.run_dir / "folds"
    kept = {p.name: p.stat().st_mtime_ns for p in folds.glob("*.json")}
    (folds / "fold-3_seed-1.json").unlink()
    second = serbench.run_benchmark("tiny", "superb", protocol="synthetic", out=tmp_path, seeds=[0, 1], overrides=FAST)
    assert second.run_dir == first.run_dir
    after = {p.name: p.stat().st_mtime_ns for p in folds.glob("*.json")}
    changed = {name for name in after if after[name] != kept.get(name)}
    assert changed == {"fold-3_seed-1.json"}
    assert second.data["folds"] == first.data["folds"]
    assert len(second.data["folds"]) == 10
    assert second.data["history"] == [{k: first.data[k] for k in ("created", "timing", "cache")}]  # kept, not overwritten


def test_leaderboard_renders_mean_and_half_width(cli_run, tmp_path):
    _, run_dir = cli_run
    target = tmp_path / "board.md"
    done = run_cli("leaderboard", str(run_dir), str(run_dir / "result.json"), "-o", str(target))
    assert done.returncode == 0, done.stderr
    text = target.read_text()
    summary = json.loads((run_dir / "result.json").read_text())["summary"]
    ua = summary["ua"]
    half = (ua["ci95"][1] - ua["ci95"][0]) * 50
    assert f"{ua['mean'] * 100:.2f} ± {half:.2f}" in text
    header = text.splitlines()[0]
    for column in ("protocol", "upstream", "downstream", "pooling", "loss", "recipe", "settings", "seeds", "run",
                   "UA (%)", "WA (%)", "macro-F1 (%)"):
        assert column in header
    assert sum(line.startswith("| synthetic ") for line in text.splitlines()) == 2
    assert not math.isnan(half)


def test_plot_writes_every_figure_of_a_run(cli_run):
    pytest.importorskip("matplotlib", reason="serbench plot needs pip install 'serbench[plot]'")
    from matplotlib.image import imread

    _, run_dir = cli_run
    done = run_cli("plot", str(run_dir))
    assert done.returncode == 0, done.stderr
    names = ("confusion", "per_class_recall", "forest", "per_fold", "curves")
    for name in names:
        svg = (run_dir / "figures" / f"{name}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
        image = imread(run_dir / "figures" / f"{name}.png")
        assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0  # a real, non-blank picture
    confusion = (run_dir / "figures" / "confusion.svg").read_text()
    assert "reference label" in confusion and "predicted label" in confusion and "angry" in confusion
    bad = run_cli("plot", str(run_dir), "--format", "gif")
    assert bad.returncode == 2 and "--format gif" in bad.stderr


def test_leaderboard_latex_and_csv_for_papers(cli_run, tmp_path):
    import csv

    _, run_dir = cli_run
    done = run_cli("leaderboard", str(run_dir), "--latex", str(tmp_path / "t.tex"), "--csv", str(tmp_path / "t.csv"))
    assert done.returncode == 0, done.stderr
    tex = (tmp_path / "t.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex and f"% run {run_dir.name}:" in tex
    (row,) = list(csv.DictReader((tmp_path / "t.csv").open()))
    summary = json.loads((run_dir / "result.json").read_text())["summary"]
    assert float(row["ua_mean"]) == pytest.approx(summary["ua"]["mean"] * 100, abs=1e-4)
    assert float(row["ua_boot_low"]) == pytest.approx(summary["ua"]["ci95_bootstrap"][0] * 100, abs=1e-4)
    assert row["run"] == run_dir.name and row["speakers"] == "10"
