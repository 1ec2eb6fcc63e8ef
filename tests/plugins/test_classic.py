"""The classic baseline (issue 26, item 3): openSMILE functionals and the scikit-learn heads.

References: the feature counts published for openSMILE's sets (88 eGeMAPSv02 functionals,
Eyben et al. 2016 and the opensmile docs' table; 6,373 ComParE 2016 functionals), and
scikit-learn's own StandardScaler + LogisticRegression / LinearSVC fitted on the same data.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from serbench.api.downstream import DownstreamContext
from serbench.api.errors import ContractError, SerbenchError
from serbench.run.plan import load_plan
from serbench.run.predict import predict
from serbench.run.registry import create, registry

from conftest import run_cli

PUBLISHED_COUNTS = {"egemaps": 88, "compare_2016": 6373}  # opensmile docs, "Feature sets" table (Functionals)


def _wavs(sizes=(8000, 16000, 24000), seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(max(sizes)) / 16000
    voiced = 0.3 * torch.sin(2 * torch.pi * 180 * t) + 0.02 * torch.randn(max(sizes), generator=g)
    padded = torch.zeros(len(sizes), max(sizes))
    for row, n in enumerate(sizes):
        padded[row, :n] = voiced[:n] * (row + 1) / len(sizes)
    return padded, torch.tensor(sizes)


@pytest.mark.parametrize("name", ["egemaps", "compare_2016"])
def test_opensmile_upstreams_give_the_published_number_of_functionals(name):
    pytest.importorskip("opensmile")
    upstream = create("upstream", name)
    padded, lengths = _wavs()
    out = upstream(padded, lengths)
    assert upstream.dim == PUBLISHED_COUNTS[name]
    assert tuple(out.hidden_states.shape) == (1, 3, 1, PUBLISHED_COUNTS[name])
    assert out.lengths.tolist() == [1, 1, 1]
    # padding never enters: each row equals the utterance alone
    for row, n in enumerate(lengths.tolist()):
        alone = upstream(padded[row : row + 1, :n], lengths[row : row + 1]).hidden_states[0, 0, 0]
        torch.testing.assert_close(out.hidden_states[0, row, 0], alone)
    assert "opensmile-" in upstream.fingerprint()


def test_egemaps_matches_opensmile_called_directly():
    opensmile = pytest.importorskip("opensmile")
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals)
    padded, lengths = _wavs()
    direct = smile.process_signal(padded[1, : int(lengths[1])].numpy(), 16000)
    assert direct.shape == (1, 88)
    ours = create("upstream", "egemaps")(padded, lengths).hidden_states[0, 1, 0].numpy()
    np.testing.assert_allclose(ours, direct.to_numpy()[0].astype(np.float32), rtol=1e-6)


def test_compare_2016_energies_need_float32_features_and_get_them(tmp_path):
    """ComParE's energies pass float16's range on loud audio: a float16 cache is refused naming
    the option, a float32 one keeps them."""
    pytest.importorskip("opensmile")
    from serbench.api.protocol import Utterance
    from serbench.run.features import extract

    padded, lengths = _wavs(sizes=(32000,))
    path = tmp_path / "loud.wav"
    sf.write(path, padded[0].numpy() * 3, 16000, subtype="FLOAT")
    upstream = create("upstream", "compare_2016")
    utterance = Utterance("loud", path, "x", "s")
    with pytest.raises(ContractError, match=r"float16's range .*-o cache.dtype=float32"):
        extract(upstream, [utterance], torch.device("cpu"), (0,), None, dtype="float16", name="compare_2016")
    features, _ = extract(upstream, [utterance], torch.device("cpu"), (0,), None, dtype="float32", name="compare_2016")
    assert features["loud"].shape == (1, 1, 6373) and np.abs(features["loud"]).max() > 65504


@pytest.mark.parametrize("name", ["egemaps", "compare_2016"])
@pytest.mark.e2e
def test_the_licence_is_shown_by_serbench_list(name):
    done = run_cli("list", "upstream", name)
    assert done.returncode == 0, done.stderr
    assert "research/non-commercial licence" in done.stdout and "serbench[opensmile]" in done.stdout


@pytest.mark.e2e
def test_a_missing_opensmile_names_the_extra_in_one_line(tmp_path):
    hidden = tmp_path / "hide" / "opensmile"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('opensmile hidden by the test')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(hidden.parent), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = run_cli("run", "--upstream", "egemaps", "--downstream", "svm", "--protocol", "synthetic",
                   "-o", "protocol.per_class=1", "--out", str(tmp_path / "runs"), env=env)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "pip install 'serbench[opensmile]'" in done.stderr and "licen" in done.stderr.lower()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def _context(classes, dim=6, layers=1, pooling="mean"):
    spec = registry().get("pooling", pooling)
    return DownstreamContext(num_layers=layers, dim=dim, frame_rate=1.0, classes=tuple(classes),
                             make_pooling=lambda d: spec.build(d))


def _blobs(classes, n=30, dim=6, seed=0, spread=1.5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, spread, (classes, dim)) * np.linspace(1, 50, dim)  # unequal scales: standardising matters
    y = np.repeat(np.arange(classes), n)
    x = centres[y] + rng.normal(0, 1, (len(y), dim)) * np.linspace(1, 50, dim)
    return x, y


def _batch(x):
    features = torch.from_numpy(x).float()[:, None, None, :]  # [B, L=1, T=1, D]
    return {"ids": [str(i) for i in range(len(x))], "features": features, "mask": torch.ones(len(x), 1, dtype=torch.bool)}


@pytest.mark.parametrize("classes", [4, 2])
def test_logreg_is_scikit_learns_with_c_chosen_by_dev_ua(classes):
    x, y = _blobs(classes)
    dev_x, dev_y = _blobs(classes, n=12, seed=1)
    head = create("downstream", "logreg", _context(range(classes)))
    chosen = head.fit(x, y, dev_x, lambda p: balanced_accuracy_score(dev_y, p.argmax(1)), seed=0)
    scaler = StandardScaler().fit(x)
    uas = []
    for c in head.grid:
        reference = LogisticRegression(C=c, class_weight="balanced", max_iter=1000).fit(scaler.transform(x), y)
        uas.append(balanced_accuracy_score(dev_y, reference.predict(scaler.transform(dev_x))))
    assert chosen["C"] == head.grid[int(np.argmax(uas))]  # first best: ties go to the smaller C
    reference = LogisticRegression(C=chosen["C"], class_weight="balanced", max_iter=1000).fit(scaler.transform(x), y)
    with torch.no_grad():
        probs = torch.softmax(head(_batch(dev_x))["logits"], -1).numpy()
    np.testing.assert_allclose(probs, reference.predict_proba(scaler.transform(dev_x)), atol=2e-5)


@pytest.mark.parametrize("classes", [3, 2])
def test_svm_margins_are_linear_svcs(classes):
    x, y = _blobs(classes, seed=3)
    dev_x, dev_y = _blobs(classes, n=12, seed=4)
    head = create("downstream", "svm", _context(range(classes)), grid=(0.01,))
    head.fit(x, y, dev_x, lambda p: balanced_accuracy_score(dev_y, p.argmax(1)), seed=0)
    scaler = StandardScaler().fit(x)
    reference = LinearSVC(C=0.01, class_weight="balanced", max_iter=10_000, random_state=0).fit(scaler.transform(x), y)
    with torch.no_grad():
        logits = head(_batch(dev_x))["logits"].double().numpy()
    margins = reference.decision_function(scaler.transform(dev_x))
    if classes == 2:
        np.testing.assert_allclose(logits[:, 0], 0.0)
        np.testing.assert_allclose(logits[:, 1], margins, atol=1e-4)
    else:
        np.testing.assert_allclose(logits, margins, atol=1e-4)
    assert (logits.argmax(1) == reference.predict(scaler.transform(dev_x))).all()


def test_frame_level_features_are_mean_pooled_before_the_classifier():
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(rng.normal(size=(5, 2, 7, 3))).float()  # [B, L, T, D]
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3, [True] * 2 + [False] * 5, [True] * 7, [True] * 5 + [False] * 2])
    head = create("downstream", "logreg", _context(["a", "b"], dim=3, layers=2))
    pooled = head.pooled({"features": frames, "mask": mask}).numpy()
    expected = [frames[b, 1, : int(mask[b].sum())].mean(0).numpy() for b in range(5)]  # the last layer, valid frames
    np.testing.assert_allclose(pooled, np.stack(expected), rtol=1e-6)


def test_a_pooling_with_weights_is_refused():
    with pytest.raises(SerbenchError, match="cannot train a pooling's weights"):
        create("downstream", "svm", _context(["a", "b"], pooling="attention"))


def test_a_class_missing_from_training_is_refused():
    x, y = _blobs(3)
    head = create("downstream", "logreg", _context(range(3)))
    with pytest.raises(SerbenchError, match="no utterance of class index 2"):
        head.fit(x[y < 2], y[y < 2], x, lambda p: 0.0, seed=0)


@pytest.mark.slow
def test_egemaps_svm_runs_on_synthetic_and_scores_its_own_predictions(tmp_path):
    pytest.importorskip("opensmile")
    done = run_cli("run", "--upstream", "egemaps", "--downstream", "svm", "--protocol", "synthetic",
                   "-o", "protocol.per_class=2", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    (run_dir,) = tmp_path.iterdir()
    result = json.loads((run_dir / "result.json").read_text())
    frame = pd.read_csv(run_dir / "predictions.csv", dtype={"fold": str})
    for fold in result["folds"]:
        part = frame[frame["fold"] == fold["fold"]]
        assert balanced_accuracy_score(part["label"], part["prediction"]) == pytest.approx(fold["metrics"]["ua"])
    assert "C " in (run_dir / "run.log").read_text() and "chosen on dev" in (run_dir / "run.log").read_text()
    saved = json.loads((run_dir / "models" / "fold-1_seed-0.json").read_text())
    assert saved["fit"]["C"] in saved["fit"]["grid"] and saved["upstream"]["fingerprint"].startswith("opensmile-")
    # serbench predict on fold 1's test files gives the run's own probabilities
    paths = {u.id: str(u.path) for u in load_plan(run_dir, "cpu").protocol().utterances.values()}
    rows = frame[frame["fold"] == "1"]
    probs = [c for c in frame.columns if c.startswith("prob_")]
    got = predict(run_dir, [paths[i] for i in rows["utterance_id"]], fold="1", seed=0).files.set_index("file")
    np.testing.assert_allclose(got.loc[[paths[i] for i in rows["utterance_id"]], probs].to_numpy(), rows[probs].to_numpy(),
                               atol=2e-5)


def test_a_classic_head_refuses_fine_tuning_before_the_run_directory_exists(tmp_path):
    import serbench

    with pytest.raises(SerbenchError, match="cannot fine-tune"):
        serbench.run_benchmark(upstream="tiny", downstream="logreg", protocol="synthetic", out=tmp_path,
                     overrides=["protocol.per_class=1", "upstream.finetune=true"], device="cpu")
    assert not any(tmp_path.iterdir())
