"""Every example in examples/ installed with pip, as a third party's package would be, and used
through the installed command: listed, passed by ``serbench check-plugin``, and all seven kinds
together in one run (the perturbation scored beside clean) whose scores are checked against scikit-learn on its predictions."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sklearn.metrics import balanced_accuracy_score

from conftest import run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PLUGINS = {"upstream": "prosody", "pooling": "max", "loss": "focal", "downstream": "probe", "protocol": "folders",
           "executor": "subprocess", "perturbation": "packetloss"}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict:
    """The seven packages installed into one folder (no dependencies, no network), on PYTHONPATH."""
    target = tmp_path_factory.mktemp("site")
    packages = sorted(str(p) for p in EXAMPLES.iterdir() if (p / "pyproject.toml").is_file())
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(target), *packages], check=True, capture_output=True)
    return {"PYTHONPATH": str(target)}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Three speakers, two classes that differ in loudness (what the prosody upstream measures)."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    for speaker in ("s1", "s2", "s3"):
        for label, amplitude in (("calm", 0.02), ("loud", 0.5)):
            (root / speaker / label).mkdir(parents=True)
            for k in range(4):
                t = np.arange(16000) / 16000
                wav = amplitude * np.sin(2 * np.pi * rng.uniform(120, 250) * t) + rng.normal(0, 0.005, t.size)
                sf.write(root / speaker / label / f"u{k}.wav", wav.astype(np.float32), 16000)
    return root


def test_every_example_is_listed(site):
    listed = run_cli("plugins", env=site)
    assert listed.returncode == 0, listed.stderr
    for name in PLUGINS.values():
        assert name in listed.stdout, name


@pytest.mark.parametrize("kind", ["upstream", "pooling", "loss", "downstream", "protocol", "perturbation"])
def test_every_example_passes_check_plugin(kind, site, corpus):
    extra = ["--data", str(corpus)] if kind == "protocol" else []
    done = run_cli("check-plugin", kind, PLUGINS[kind], *extra, env=site)
    assert done.returncode == 0, done.stdout + done.stderr


def test_all_seven_examples_in_one_run(site, corpus, tmp_path):
    done = run_cli("run", "--upstream", "prosody", "--downstream", "probe", "--pooling", "max", "--loss", "focal",
                   "--protocol", "folders", "--data", str(corpus), "--executor", "subprocess", "-o", "executor.workers=2",
                   "--perturb", "packetloss:rate=0.5",
                   "-o", "train.max_epochs=3", "--device", "cpu", "--quiet", "--out", str(tmp_path), env=site)
    assert done.returncode == 0, done.stderr
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    result = json.loads((run_dir / "result.json").read_text())
    assert {result["plugins"][name] for name in ("prosody", "probe", "max", "focal", "folders")} == {"1"}
    (condition,) = result["robustness"]["conditions"].values()  # the perturbation scored beside clean
    assert condition["perturbation"]["name"] == "packetloss" and 0.0 <= condition["unchanged"] <= 1.0
    assert [f["fold"] for f in result["folds"]] == ["s1", "s2", "s3"]
    with (run_dir / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    for fold in result["folds"]:  # the run's UA is scikit-learn's balanced accuracy on its own predictions
        mine = [r for r in rows if r["fold"] == fold["fold"]]
        assert len(mine) == 8
        expected = balanced_accuracy_score([r["label"] for r in mine], [r["prediction"] for r in mine])
        assert fold["metrics"]["ua"] == pytest.approx(expected)
