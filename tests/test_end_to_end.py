"""Whole runs on the embedded corpus, through the CLI and the Python API."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

import serbench
from serbench.leaderboard import COLUMNS
from serbench.results import SCHEMA

from conftest import run_cli

pytestmark = pytest.mark.slow
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
        _interval(entry["ci95_bootstrap"])
    assert set(r["timing"]) >= {"total_s", "features_s", "train_s"}
    # the terminal table
    assert "95% CI (t, folds)" in done.stdout and "result:" in done.stdout
    assert f"{r['summary']['ua']['mean'] * 100:.2f}" in done.stdout


def test_predictions_file_matches_the_folds(cli_run):
    _, run_dir = cli_run
    frame = pd.read_csv(run_dir / "predictions.csv", dtype={"fold": str, "speaker": str})
    classes = ["neutral", "happy", "angry", "sad"]
    assert list(frame.columns) == ["fold", "seed", "utterance_id", "speaker", "label", "prediction"] + [
        f"prob_{c}" for c in classes]
    assert len(frame) == 640 and frame["utterance_id"].is_unique
    probs = frame[[f"prob_{c}" for c in classes]].to_numpy()
    assert probs.sum(1) == pytest.approx(1.0, abs=1e-4)
    assert (frame["prediction"] == [classes[k] for k in probs.argmax(1)]).all()
    result = json.loads((run_dir / "result.json").read_text())
    for fold in result["folds"]:
        part = frame[frame["fold"] == fold["fold"]]
        assert (part["label"] == part["prediction"]).mean() == pytest.approx(fold["metrics"]["wa"])
        assert set(part["speaker"]) == {f"{int(fold['fold']):02d}F", f"{int(fold['fold']):02d}M"}


def test_embedded_corpus_is_learnable(cli_run):
    _, run_dir = cli_run
    assert json.loads((run_dir / "result.json").read_text())["summary"]["ua"]["mean"] >= 0.70


def test_embedded_corpus_does_not_leak(tmp_path):
    result = serbench.run("fbank", "superb", protocol="synthetic", out=tmp_path,
                          overrides=["train.shuffle_labels=true"])
    assert abs(result.summary["ua"]["mean"] - 0.25) <= 0.10


def test_same_seed_gives_the_same_metrics(tmp_path):
    a = serbench.run("fbank", "superb", protocol="synthetic", out=tmp_path / "a", seeds=[7], overrides=FAST)
    b = serbench.run("fbank", "superb", protocol="synthetic", out=tmp_path / "b", seeds=[7], overrides=FAST)
    assert a.data["folds"] == b.data["folds"]
    assert (a.run_dir / "predictions.csv").read_text() == (b.run_dir / "predictions.csv").read_text()


def test_rerun_resumes_and_recomputes_only_missing_jobs(tmp_path):
    first = serbench.run("tiny", "superb", protocol="synthetic", out=tmp_path, seeds=[0, 1], overrides=FAST)
    folds = first.run_dir / "folds"
    kept = {p.name: p.stat().st_mtime_ns for p in folds.glob("*.json")}
    (folds / "fold-3_seed-1.json").unlink()
    second = serbench.run("tiny", "superb", protocol="synthetic", out=tmp_path, seeds=[0, 1], overrides=FAST)
    assert second.run_dir == first.run_dir
    after = {p.name: p.stat().st_mtime_ns for p in folds.glob("*.json")}
    changed = {name for name in after if after[name] != kept.get(name)}
    assert changed == {"fold-3_seed-1.json"}
    assert second.data["folds"] == first.data["folds"]
    assert len(second.data["folds"]) == 10


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
    for column in ("protocol", "upstream", "downstream", "seeds", "UA (%)", "WA (%)", "macro-F1 (%)"):
        assert column in header
    assert text.count("| synthetic") == 2
    assert not math.isnan(half)
