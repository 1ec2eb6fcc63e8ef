"""Metrics against scikit-learn, the independent reference."""

import numpy as np
import pytest
from sklearn import metrics as skm

from serbench.report.metrics import confusion, from_confusion, score

CLASSES = ["neutral", "happy", "angry", "sad"]


@pytest.mark.parametrize("seed", range(20))
def test_headline_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    y_true = rng.integers(0, 4, n)
    # biased predictions, sometimes never predicting a class
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, 3 if seed % 3 == 0 else 4, n))
    got = score(y_true, y_pred, CLASSES)
    assert got["ua"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert got["wa"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert got["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro", zero_division=0))
    recall = skm.recall_score(y_true, y_pred, average=None, labels=range(4), zero_division=0)
    f1 = skm.f1_score(y_true, y_pred, average=None, labels=range(4), zero_division=0)
    for k, c in enumerate(CLASSES):
        assert got["per_class"][c]["recall"] == pytest.approx(recall[k])
        assert got["per_class"][c]["f1"] == pytest.approx(f1[k])
    np.testing.assert_array_equal(got["confusion"], skm.confusion_matrix(y_true, y_pred, labels=range(4)))


def test_class_missing_from_reference_is_left_out_like_sklearn():
    y_true = np.array([0, 0, 1, 1, 1])
    y_pred = np.array([0, 2, 1, 1, 0])
    got = score(y_true, y_pred, CLASSES)
    assert got["ua"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert got["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro", zero_division=0))


def test_batched_confusions_give_the_same_values_as_one_by_one():
    rng = np.random.default_rng(1)
    matrices = [confusion(rng.integers(0, 4, 50), rng.integers(0, 4, 50), 4) for _ in range(6)]
    batched = from_confusion(np.stack(matrices))
    for i, cm in enumerate(matrices):
        single = from_confusion(cm)
        for key in ("ua", "wa", "macro_f1"):
            assert batched[key][i] == pytest.approx(single[key])
