"""A method's stages run through the one loop (serbench.run.stages.run_stages): the guard, the
saved state after each stage, the resume, and one progress tick per epoch."""

from contextlib import contextmanager

import numpy as np
import torch

from serbench.api.stages import Optimiser, Stage
from serbench.run.stages import run_stages

X = np.array([[1.0, 2.0], [0.5, -1.0], [-1.5, 0.3], [2.0, 1.0], [9.0, 9.0]])
Y = np.array([1.0, -2.0, 0.5, 3.0, 100.0])


def batcher(ids, labels=None, train=False):
    rows = [int(i) for i in ids]
    return {"ids": list(ids), "x": torch.tensor(X[rows]), "labels": torch.tensor(Y[rows])}


batcher.lengths = lambda ids: [1] * len(ids)


def _stage(model, fed):
    def step(batch, generator, progress):
        fed.append(list(batch["ids"]))
        assert "labels" not in batch  # the stage declared no labels: the guard stripped them
        return (model(batch["x"]) ** 2).mean()

    return Stage("shrink", ("train",), False, step=step, optimiser=Optimiser("sgd", 0.01), epochs=3, batch_size=2)


def test_a_stage_trains_through_the_loop_is_saved_and_a_rerun_resumes(tmp_path):
    model = torch.nn.Linear(2, 1, bias=False).double()
    start = model.weight.detach().clone()
    fed, ticks, log = [], [], []

    @contextmanager
    def task(description, total, announce=True):
        ticks.append([description, total, 0])
        yield lambda n=1: ticks[-1].__setitem__(2, ticks[-1][2] + n)

    splits = {"train": ["0", "1", "2"], "dev": ["3"]}
    seen = run_stages(model, [_stage(model, fed)], splits, batcher, torch.device("cpu"), 0, tmp_path, "m",
                      log.append, task)
    assert seen == {"shrink": {"0", "1", "2"}} and len(fed) == 3 * 2  # 3 epochs of 2 batches, train only
    assert ticks == [["stage 1/1: shrink", 3, 3]]
    w = start.numpy()[0]
    for ids in fed:  # SGD on mean((x w)^2), by hand, over the batches in the order they came
        x = X[[int(i) for i in ids]]
        w = w - 0.01 * 2 * x.T @ (x @ w) / len(x)
    np.testing.assert_allclose(model.weight.detach().numpy()[0], w, rtol=1e-12)
    trained = model.weight.detach().clone()
    assert (tmp_path / "1-shrink.pt").exists() and "stage shrink: done" in log[-1]
    again = torch.nn.Linear(2, 1, bias=False).double()
    fed.clear()
    run_stages(again, [_stage(again, fed)], splits, batcher, torch.device("cpu"), 0, tmp_path, "m", log.append)
    assert fed == [] and torch.equal(again.weight.detach(), trained) and "resumed" in log[-1]
