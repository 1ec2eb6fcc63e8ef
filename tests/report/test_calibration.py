"""Calibration metrics: ECE against a hand-worked example, Brier and NLL against
scikit-learn, intervals against a brute-force jackknife, and temperature scaling fitted on dev
only (it lowers the dev NLL, and test labels never move it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import brier_score_loss, log_loss

from serbench.api.errors import SerbenchError
from serbench.report import calibration
from serbench.report.reliability import reliability_bins

CLASSES = ["neutral", "happy", "angry"]

# five predictions worked by hand (two classes; a third with probability 0 would change nothing)
HAND_PROBS = np.array([[0.90, 0.10], [0.95, 0.05], [0.30, 0.70], [0.72, 0.28], [0.55, 0.45]])
HAND_LABELS = np.array([0, 1, 1, 1, 0])


def test_ece_of_a_hand_worked_example():
    """Confidences 0.90 (right), 0.95 (wrong), 0.70 (right), 0.72 (wrong), 0.55 (right). With
    15 bins of width 1/15: 0.90 in (13/15, 14/15], 0.95 in (14/15, 1], 0.70 and 0.72 together in
    (10/15, 11/15] (accuracy 0.5, confidence 0.71), 0.55 in (8/15, 9/15]. ECE = (|1 - 0.9| +
    |0 - 0.95| + 2 |0.5 - 0.71| + |1 - 0.55|) / 5 = 1.92 / 5 = 0.384. Class-wise: every
    probability alone in its bin, for class 0 (|1-.9| + |0-.95| + |0-.3| + |0-.72| + |1-.55|) / 5
    = 0.504, the same for class 1 (two classes mirror each other); mean 0.504."""
    scored = calibration.score(HAND_PROBS, HAND_LABELS)
    assert scored["ece"] == pytest.approx(0.384, abs=1e-12)
    assert scored["classwise_ece"] == pytest.approx(0.504, abs=1e-12)
    assert list(calibration.bin_index(np.array([1 / 15, 1 / 15 + 1e-9, 1.0, 0.0]))) == [0, 1, 14, 0]
    found = reliability_bins(HAND_PROBS, HAND_LABELS)
    assert found["count"][10] == 2 and found["accuracy"][10] == 0.5 and found["confidence"][10] == pytest.approx(0.71)


def _random(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, 0.7), n)
    labels = np.array([rng.choice(k, p=0.5 * p + 0.5 / k) for p in probs])
    return probs, labels


def test_brier_and_nll_are_sklearns():
    probs, labels = _random(300, 3)
    scored = calibration.score(probs, labels)
    assert scored["brier"] == pytest.approx(brier_score_loss(labels, probs, labels=[0, 1, 2]), abs=1e-12)
    assert scored["nll"] == pytest.approx(log_loss(labels, probs, labels=[0, 1, 2]), abs=1e-12)


def _frame(probs: np.ndarray, labels: np.ndarray, speakers: int, folds: int = 1) -> pd.DataFrame:
    n = len(labels)
    frame = pd.DataFrame({"fold": [str(i % folds + 1) for i in range(n)], "seed": 0,
                          "utterance_id": [f"u{i}" for i in range(n)],
                          "speaker": [f"s{(i // folds) % speakers}_{i % folds}" for i in range(n)],
                          "label": [CLASSES[y] for y in labels], "prediction": [CLASSES[p] for p in probs.argmax(1)]})
    for k, c in enumerate(CLASSES):
        frame[f"prob_{c}"] = probs[:, k]
    return frame


def test_single_split_interval_is_a_jackknife_over_speakers():
    probs, labels = _random(240, 3, seed=1)
    frame = _frame(probs, labels, speakers=12)
    found = calibration.summarize(frame, probs, CLASSES)
    assert found["cluster"]["unit"] == "speaker" and found["cluster"]["clusters"] == 12
    for metric in calibration.CALIBRATION_METRICS:
        assert found[metric]["mean"] == pytest.approx(calibration.score(probs, labels)[metric], abs=1e-12)
        replicates = []
        for speaker in sorted(frame["speaker"].unique()):
            keep = (frame["speaker"] != speaker).to_numpy()
            replicates.append(calibration.score(probs[keep], labels[keep])[metric])
        r = np.array(replicates)
        half = scipy_stats.t.ppf(0.975, found["cluster"]["df"]) * np.sqrt(11 / 12 * ((r - r.mean()) ** 2).sum())
        centre = found[metric]["mean"]
        assert found[metric]["ci95"] == pytest.approx([max(0.0, centre - half), centre + half], abs=1e-12)


def test_folds_are_averaged_like_the_accuracy_metrics():
    probs, labels = _random(200, 3, seed=2)
    frame = _frame(probs, labels, speakers=2, folds=5)
    found = calibration.summarize(frame, probs, CLASSES)
    per_fold = [calibration.score(probs[(frame["fold"] == f).to_numpy()], labels[(frame["fold"] == f).to_numpy()])["nll"]
                for f in sorted(frame["fold"].unique())]
    assert found["cluster"]["unit"] == "fold"
    assert found["nll"]["mean"] == pytest.approx(np.mean(per_fold))
    expected = scipy_stats.t.interval(0.95, 4, loc=np.mean(per_fold), scale=scipy_stats.sem(per_fold))
    assert found["nll"]["ci95"] == pytest.approx(list(expected))


def _overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A model twice as sure as it should be: true probabilities, sharpened (T = 1/2)."""
    rng = np.random.default_rng(seed)
    true = rng.dirichlet(np.ones(3), n)
    labels = np.array([rng.choice(3, p=p) for p in true])
    return calibration.rescale(true, 0.5), labels


def test_temperature_lowers_dev_nll_and_is_the_best_on_a_grid():
    probs, labels = _overconfident(400, seed=3)
    t = calibration.fit_temperature(probs, labels)
    nll = calibration.score(calibration.rescale(probs, t), labels)["nll"]
    assert nll < calibration.score(probs, labels)["nll"]
    assert 1.5 < t < 2.6  # undoing the sharpening by 1/2
    grid = [log_loss(labels, calibration.rescale(probs, g), labels=[0, 1, 2]) for g in np.linspace(0.2, 5, 200)]
    assert nll <= min(grid) + 1e-9
    assert (calibration.rescale(probs, t).argmax(1) == probs.argmax(1)).all()  # predictions unchanged


def test_temperature_is_fitted_on_dev_and_never_reads_test_labels(tmp_path):
    dev_probs, dev_labels = _overconfident(300, seed=4)
    test_probs, test_labels = _overconfident(300, seed=5)
    dev = _frame(dev_probs, dev_labels, speakers=10)
    dev.to_csv(tmp_path / "dev.csv", index=False)

    def scaled(labels):
        return calibration.temperature_scaled(_frame(test_probs, labels, speakers=10), test_probs, CLASSES, True,
                                              lambda fold, seed: tmp_path / "dev.csv")

    found = scaled(test_labels)
    assert found["temperatures"] == {"1/0": round(calibration.fit_temperature(
        calibration.probabilities(dev, CLASSES, "dev"), dev_labels), 6)}
    shuffled = scaled(np.random.default_rng(0).permutation(test_labels))
    assert shuffled["temperatures"] == found["temperatures"]  # the test labels moved nothing
    assert found["nll"]["mean"] < calibration.score(test_probs, test_labels)["nll"]
    dev.assign(label=np.random.default_rng(1).permutation(dev["label"])).to_csv(tmp_path / "dev.csv", index=False)
    assert scaled(test_labels)["temperatures"] != found["temperatures"]  # the dev labels do


def test_a_missing_dev_file_or_probability_column_is_named(tmp_path):
    probs, labels = _random(20, 3)
    frame = _frame(probs, labels, speakers=5)
    with pytest.raises(SerbenchError, match=r"dev\.csv: missing; temperature scaling is fitted on each job's dev"):
        calibration.temperature_scaled(frame, probs, CLASSES, True, lambda fold, seed: tmp_path / "dev.csv")
    with pytest.raises(SerbenchError, match=r"t\.csv: no 'prob_angry' column"):
        calibration.probabilities(frame.drop(columns="prob_angry"), CLASSES, "t.csv")
    with pytest.raises(SerbenchError, match=r"t\.csv: row 2 prob_happy is 'x', not a probability"):
        calibration.probabilities(frame.astype({"prob_happy": object}).assign(
            prob_happy=["0.1", "x"] + ["0.1"] * 18), CLASSES, "t.csv")
