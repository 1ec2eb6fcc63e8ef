"""k-means against scikit-learn on separable data; AM-Softmax against its formula."""

import math

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from serbench.api.blocks import CosineClassifier
from serbench.api.errors import SerbenchError
from serbench.api.kmeans import kmeans
from serbench.run.registry import create


def test_kmeans_finds_separable_clusters_like_sklearn():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (6, 5))
    points = np.concatenate([c + rng.normal(0, 0.5, (200, 5)) for c in centres])
    truth = np.repeat(np.arange(6), 200)
    found_centres, labels = kmeans(torch.tensor(points), 6, seed=1)
    reference = KMeans(6, n_init=10, random_state=0).fit(points)
    assert adjusted_rand_score(truth, labels.numpy()) == pytest.approx(1.0)
    assert adjusted_rand_score(reference.labels_, labels.numpy()) == pytest.approx(1.0)
    ours = sorted(map(tuple, np.round(found_centres.numpy(), 3)))
    theirs = sorted(map(tuple, np.round(reference.cluster_centers_, 3)))
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


def test_kmeans_is_seeded_and_caps_k():
    points = torch.randn(50, 3)
    a, la = kmeans(points, 4, seed=3)
    b, lb = kmeans(points, 4, seed=3)
    assert torch.equal(a, b) and torch.equal(la, lb)
    centres, _ = kmeans(points[:3], 8)
    assert centres.shape == (3, 3)


def test_am_softmax_matches_its_formula():
    loss = create("loss", "am_softmax", ["a", "b", "c"], [1, 1, 1])
    cosine = torch.tensor([[0.9, 0.1, -0.2], [0.3, 0.5, 0.4]])
    labels = torch.tensor([0, 2])
    expected = 0.0
    for row, y in zip(cosine.tolist(), labels.tolist()):
        target = math.exp(30 * (row[y] - 0.2))
        others = sum(math.exp(30 * c) for j, c in enumerate(row) if j != y)
        expected += -math.log(target / (target + others))
    value = loss({"cosine": cosine, "logits": 30 * cosine}, {"labels": labels})
    assert float(value) == pytest.approx(expected / 2, rel=1e-5)
    with pytest.raises(SerbenchError, match="needs a downstream that outputs cosine"):
        loss({"logits": cosine}, {"labels": labels})


def test_cosine_classifier_is_bounded():
    cos = CosineClassifier(4, 3)(torch.randn(5, 4) * 100)
    assert cos.abs().max() <= 1.0 + 1e-6
