"""The published methods end to end on the embedded corpus, their needs, and fusion."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score

import serbench
from serbench.api.errors import SerbenchError
from serbench.report.fusion import _score, fit_weights

from conftest import run_cli
from lookalike import tiny_wav

FAST = ["protocol.per_class=1", "train.max_epochs=1"]


def test_sap_gap_end_to_end(tmp_path):  # frozen, as under the shared recipe: VAD masks cached per utterance
    result = serbench.run_benchmark("tiny", "sap_gap", protocol="synthetic", out=tmp_path, overrides=FAST, recipe="shared")
    assert result.data["config"]["loss"] == "mtl"
    no_speech = result.data["annotations"]["vad_no_speech"]
    assert isinstance(no_speech, int) and 0 <= no_speech < 40
    assert len(result.data["folds"]) == 5 and 0 <= result.summary["ua"]["mean"] <= 1


@pytest.mark.parametrize("options", [["downstream.gender=cln"], ["downstream.text=sum_third"]])
def test_wavlm_cond_end_to_end(tmp_path, options):
    result = serbench.run_benchmark("tiny", "wavlm_cond", pooling="attention", protocol="synthetic", out=tmp_path,
                          overrides=FAST + options)
    assert result.data["config"]["loss"] == "weighted_ce" and result.data["config"]["pooling"] == "attention"
    assert len(result.data["folds"]) == 5


def test_wavlm_cond_regresses_the_dimensions_with_its_conditioning(tmp_path):
    """--task dimensional: gender-conditioned wavlm_cond writes pred_<dim> columns, and the
    result's CCC is audmetric's on its own predictions table; the categorical model is unchanged
    (same parameter shapes but the last layer's, whose width is the number of dimensions)."""
    audmetric = pytest.importorskip("audmetric")
    result = serbench.run_benchmark("tiny", "wavlm_cond", pooling="std", protocol="synthetic", out=tmp_path,
                                    overrides=FAST + ["downstream.gender=sum"], recipe="shared", task="dimensional")
    assert result.data["task"] == "dimensional" and result.data["config"]["loss"] == "mse"
    assert result.data["config"]["params"]["downstream"]["gender"] == "sum"
    frame = pd.read_csv(result.run_dir / "predictions.csv", dtype={"fold": str})
    for record in result.data["folds"]:
        rows = frame[frame["fold"] == record["fold"]]
        for d in result.data["dimensions"]:
            assert record["metrics"][f"ccc_{d}"] == pytest.approx(
                audmetric.concordance_cc(rows[f"true_{d}"], rows[f"pred_{d}"]), abs=1e-9)
    from serbench.api.downstream import DownstreamContext
    from serbench_plugins.wavlm_cond.model import WavLMConditioned

    def built(classes):
        from serbench.run.registry import registry

        context = DownstreamContext(num_layers=3, dim=16, frame_rate=50.0, classes=tuple(classes),
                                    make_pooling=lambda dim: registry().get("pooling", "std").build(dim))
        return WavLMConditioned(context, "linear", 8, "sum", "none", 0.1, False)

    categorical, dimensional = built(["a", "b", "c", "d"]), built(["arousal", "valence", "dominance"])
    assert categorical.classifier.out_features == 4 and dimensional.classifier.out_features == 3
    shapes = lambda m: {k: v.shape for k, v in m.state_dict().items() if not k.startswith("classifier")}  # noqa: E731
    assert shapes(categorical) == shapes(dimensional)


def _csv_without_side_information(tmp_path):
    rows = []
    for k in range(8):
        tiny_wav(tmp_path / f"{k}.wav", seed=k, seconds=0.3)
        rows.append(f"{k}.wav,{'ab'[k % 2]},{['train', 'dev', 'test', 'train'][k % 4]}")
    path = tmp_path / "c.csv"
    path.write_text("path,label,split\n" + "\n".join(rows) + "\n")
    return path


def test_missing_side_information_fails_before_any_work(tmp_path):
    data = _csv_without_side_information(tmp_path)
    with pytest.raises(SerbenchError, match=r"downstream sap_gap needs dimensional labels \(valence, arousal\), which protocol csv:c.csv lacks for 8 of 8"):
        serbench.run_benchmark("fbank", "sap_gap", protocol="csv", data=data, out=tmp_path / "runs")
    with pytest.raises(SerbenchError, match=r"downstream wavlm_cond needs speaker gender"):
        serbench.run_benchmark("fbank", "wavlm_cond", protocol="csv", data=data, out=tmp_path / "runs", overrides=["downstream.gender=sum"])
    assert not (tmp_path / "runs").exists()


def test_fitted_weights_keep_their_constraints_and_never_lose_on_dev():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    models = []
    for skill in (0.5, 0.3, 0.2):  # each model right on a share of the utterances
        p = rng.dirichlet(np.ones(4), 200)
        right = rng.random(200) < skill
        p[right, labels[right]] += 1.0
        models.append(p / p.sum(1, keepdims=True))
    probs = np.stack(models)
    weights = fit_weights(probs, labels, "ua")
    assert weights.shape == (3, 4) and (weights >= 0).all()
    np.testing.assert_allclose(weights.sum(0), 1.0, atol=1e-6)
    best_single = max(_score(probs, np.eye(3)[[m] * 4].T, labels, "ua") for m in range(3))
    assert _score(probs, weights, labels, "ua") >= best_single


@pytest.mark.e2e
def test_fuse_command_writes_a_run_that_the_leaderboard_reads(tmp_path):
    a = serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=tmp_path, overrides=FAST)
    b = serbench.run_benchmark("fbank", "wavlm_cond", pooling="std", protocol="synthetic", out=tmp_path, overrides=FAST)
    fused = tmp_path / "fused"
    done = run_cli("fuse", str(a.run_dir), str(b.run_dir), "--out", str(fused))
    assert done.returncode == 0, done.stderr
    result = json.loads((fused / "result.json").read_text())
    assert result["config"]["fused_runs"] == [a.run_id, b.run_id]
    for job, weights in json.loads((fused / "config.json").read_text())["weights"].items():
        np.testing.assert_allclose(np.array(weights).sum(0), 1.0, atol=1e-5)
    fused_fold = json.loads((fused / "folds" / "fold-1_seed-0.json").read_text())
    for run in (a, b):  # never worse on dev than either run alone
        dev = pd.read_csv(run.run_dir / "folds" / "fold-1_seed-0.dev.csv")
        single = balanced_accuracy_score(dev["label"], dev["prediction"])
        assert fused_fold["dev_score"] >= single - 1e-9
    board = run_cli("leaderboard", str(fused), str(a.run_dir))
    assert board.returncode == 0 and "fusion(" in board.stdout


def test_label_smoothing_with_class_weights_weights_each_utterance_by_its_own_class():
    """By hand: logits ln[1, 2, 1] give p = [1/4, 1/2, 1/4]; gamma 0.2 over K = 3 puts 0.8 on the true
    class and 0.1 on each other one. Utterance 1 (class a): 0.8 ln4 + 0.1 ln2 + 0.1 ln4 = 1.9 ln2;
    utterance 2 (class b): 0.8 ln2 + 0.1 ln4 + 0.1 ln4 = 1.2 ln2. Weighted by their own classes'
    weights (1 and 3) and normalised by them, as weighted_ce is: (1.9 + 3 * 1.2) / 4 ln2 = 1.375 ln2.
    torch's CrossEntropyLoss(weight=w, label_smoothing=...) weights each smoothed term by *that*
    term's class (1.175 ln2 here), which moves the targets towards rare classes: not this loss."""
    import math

    import torch
    from torch.nn import functional as F

    from serbench_plugins.losses.classification import CrossEntropy

    weights, logits, labels = [1.0, 3.0, 0.5], torch.log(torch.tensor([[1.0, 2, 1], [1, 2, 1]])), torch.tensor([0, 1])
    loss = CrossEntropy(weights, smoothing=0.2)({"logits": logits}, {"labels": labels})
    assert float(loss) == pytest.approx(1.375 * math.log(2), rel=1e-6)
    torchs = F.cross_entropy(logits, labels, weight=torch.tensor(weights), label_smoothing=0.3)
    assert float(torchs) == pytest.approx(1.175 * math.log(2), rel=1e-6) and float(torchs) != pytest.approx(float(loss))
    # the two definitions agree where they must: no smoothing (weighted CE), or equal weights (torch's smoothing)
    no_smoothing = CrossEntropy(weights, smoothing=0.0)({"logits": logits}, {"labels": labels})
    assert float(no_smoothing) == pytest.approx(float(F.cross_entropy(logits, labels, weight=torch.tensor(weights))))
    equal = CrossEntropy([2.0, 2.0, 2.0], smoothing=0.2)({"logits": logits}, {"labels": labels})
    assert float(equal) == pytest.approx(float(F.cross_entropy(logits, labels, label_smoothing=0.3)))


@pytest.mark.parametrize("method", ["sap_gap", "wavlm_cond"])
def test_reported_rows_name_their_checkpoint_and_a_run_on_another_is_marked(method, tmp_path):
    from serbench.report.leaderboard import checkpoint_differs
    from serbench.report.results import Result
    from serbench.run.registry import registry

    rows = registry().get("downstream", method).meta.reported
    assert {row["checkpoint"] for row in rows} == {"microsoft/wavlm-large"}  # WavLM Large: one release
    row = rows[0]
    same = Result({"config": {"upstream": "wavlm_large"}, "upstream_fingerprint": "microsoft/wavlm-large@c1423ed"},
                  tmp_path)
    assert checkpoint_differs(row, same) == ""
    tiny = Result({"config": {"upstream": "tiny"}, "upstream_fingerprint": "tiny:seed0"}, tmp_path)
    assert checkpoint_differs(row, tiny) == "another checkpoint (tiny:seed0; the paper's: microsoft/wavlm-large)"
    base = Result({"config": {"upstream": "wavlm_base_plus"}, "upstream_fingerprint": "microsoft/wavlm-base-plus@4c0"},
                  tmp_path)
    assert "another checkpoint (microsoft/wavlm-base-plus;" in checkpoint_differs(row, base)
    assert checkpoint_differs({**row, "checkpoint": "unclear: the paper says HuBERT-large-960"}, same) == (
        "the paper's checkpoint is unclear")
