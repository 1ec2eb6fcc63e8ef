"""Training loop pieces: the learning-rate schedule, dev-loss selection, truncation."""

import math

import numpy as np
import pytest
import torch

import serbench
from serbench.api.protocol import Utterance
from serbench.api.stages import Schedule
from serbench.run.batching import FeatureBatcher
from serbench.run.loop import schedule


def _lrs(total, warmup, kind):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = schedule(optimizer, total, Schedule(kind, warmup))
    lrs = []
    for _ in range(total):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_warmup_then_cosine_follows_the_formula():
    lrs = _lrs(20, 0.1, "cosine")
    assert lrs[:2] == pytest.approx([0.5, 1.0])
    for step in range(2, 20):
        assert lrs[step] == pytest.approx(0.5 * (1 + math.cos(math.pi * (step - 2) / 18)))
    assert _lrs(10, 0.0, "constant") == [1.0] * 10


def test_selecting_on_dev_loss_and_truncating(tmp_path):
    result = serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=tmp_path,
                          overrides=["protocol.per_class=2", "train.max_epochs=3", "train.select_on=loss",
                                     "train.max_seconds=1.5"])
    for fold in result.data["folds"]:
        record = __import__("json").loads((result.run_dir / "folds" / f"fold-{fold['fold']}_seed-0.json").read_text())
        history = record["dev_history"]  # negated dev losses: the best is the largest
        assert record["best_epoch"] == int(np.argmax(history)) + 1 and all(h < 0 for h in history)


def test_feature_batches_from_tensors_equal_those_from_arrays():
    u = {i: Utterance(id=i, path=None, label="x", speaker="s") for i in "ab"}
    arrays = {"a": np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float16),
              "b": np.random.default_rng(1).normal(size=(2, 3, 3)).astype(np.float16)}
    tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
    x = FeatureBatcher(arrays, u, ["x"])(["a", "b"])
    y = FeatureBatcher(tensors, u, ["x"])(["a", "b"])
    assert torch.equal(x["features"], y["features"]) and torch.equal(x["mask"], y["mask"])
    assert float(x["features"][1, :, 3:].abs().sum()) == 0.0  # padding stays zero


def test_feature_batches_are_truncated_to_max_frames():
    u = Utterance(id="a", path=None, label="x", speaker="s")
    features = {"a": np.ones((1, 300, 4), dtype=np.float16)}
    batch = FeatureBatcher(features, {"a": u}, ["x"], max_frames=150)(["a"])
    assert batch["features"].shape == (1, 1, 150, 4) and batch["lengths"].tolist() == [150]


def test_bucketed_batches_cover_every_id_once_with_little_padding():
    from serbench.api.batch import bucketed

    rng = np.random.default_rng(0)
    ids = [f"u{i}" for i in range(500)]
    lengths = rng.integers(50, 1000, len(ids)).tolist()
    size = {i: n for i, n in zip(ids, lengths)}

    def padding(batches):
        return sum(max(size[i] for i in b) * len(b) - sum(size[i] for i in b) for b in batches)

    generator = torch.Generator().manual_seed(0)
    epochs = [bucketed(ids, lengths, 32, generator, per_bucket=4) for _ in range(2)]
    for batches in epochs:
        flat = [i for b in batches for i in b]
        assert sorted(flat) == sorted(ids) and all(len(b) <= 32 for b in batches)
    plain = bucketed(ids, lengths, 32, torch.Generator().manual_seed(0), per_bucket=0)
    assert padding(epochs[0]) < 0.35 * padding(plain)  # sorted buckets of 128: about 0.27
    mates = [{frozenset(b) for b in batches} for batches in epochs]
    assert mates[0] != mates[1]  # a new draw of batch-mates every epoch
    evaluation = bucketed(ids, lengths, 64, None)
    flat = [size[i] for b in evaluation for i in b]
    assert flat == sorted(lengths, reverse=True)
