"""The one training loop (serbench.run.loop) against hand computations, and the check that no
other module builds or steps an optimiser."""

import ast
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from serbench.api.errors import SerbenchError
from serbench.api.stages import Optimiser, Schedule, Stage, StageInput
from serbench.run import loop

ROOT = Path(__file__).resolve().parents[2]
X = np.array([[1.0, 2.0], [0.5, -1.0], [-1.5, 0.3], [2.0, 1.0]])
Y = np.array([1.0, -2.0, 0.5, 3.0])


class Rows:
    """A batcher over four rows of a linear regression: ids "0".."3"."""

    def lengths(self, ids):
        return [1] * len(ids)

    def __call__(self, ids, train=False):
        rows = [int(i) for i in ids]
        return {"ids": list(ids), "x": torch.tensor(X[rows]), "y": torch.tensor(Y[rows])}


def _linear() -> torch.nn.Linear:
    model = torch.nn.Linear(2, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.3, -0.2]], dtype=torch.float64))
    return model


def _mse(model):
    return lambda batch, generator, progress: ((model(batch["x"]).squeeze(-1) - batch["y"]) ** 2).mean()


def _inputs(model, seed=0):
    return StageInput(tuple(str(i) for i in range(4)), Rows(), torch.device("cpu"), seed, model)


def _grad(w, rows):
    """d/dw mean((x w - y)^2) over ``rows``, by hand."""
    x, y = X[rows], Y[rows]
    return 2 * x.T @ (x @ w - y) / len(rows)


def test_two_epochs_of_sgd_on_a_linear_model_match_the_hand_computation():
    model = _linear()
    stage = Stage("sgd", ("train",), False, step=_mse(model), optimiser=Optimiser("sgd", 0.1), epochs=2, batch_size=4)
    loop.train(stage, _inputs(model))
    w = np.array([0.3, -0.2])
    for _ in range(2):  # one batch of all four rows per epoch: the order does not matter
        w = w - 0.1 * _grad(w, [0, 1, 2, 3])
    np.testing.assert_allclose(model.weight.detach().numpy()[0], w, rtol=1e-12)


def test_adam_with_warmup_then_cosine_and_weight_decay_matches_the_hand_computation():
    model = _linear()
    seen, progress = [], []
    mse = _mse(model)

    def step(batch, generator, done):
        seen.append([int(i) for i in batch["ids"]])
        progress.append(done)
        return mse(batch, generator, done)

    stage = Stage("adam", ("train",), False, step=step, optimiser=Optimiser("adamw", 0.05, weight_decay=0.1),
                  schedule=Schedule("cosine", warmup_ratio=0.25), epochs=2, batch_size=2, bucket_batches=0)
    loop.train(stage, _inputs(model))
    assert len(seen) == 4 and sorted(seen[0] + seen[1]) == [0, 1, 2, 3]
    assert progress == [0.0, 0.25, 0.5, 0.75]
    # AdamW by hand (Loshchilov & Hutter): decoupled decay, bias-corrected moments; the lr of
    # step s: warm-up 1 step ((s + 1) / 1), then 0.5 (1 + cos(pi (s - 1) / 3))
    lrs = [0.05 * (1.0 if s < 1 else 0.5 * (1 + math.cos(math.pi * (s - 1) / 3))) for s in range(4)]
    w, m, v = np.array([0.3, -0.2]), np.zeros(2), np.zeros(2)
    for t, (rows, lr) in enumerate(zip(seen, lrs), start=1):
        g = _grad(w, rows)
        w = w * (1 - lr * 0.1)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        w = w - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    np.testing.assert_allclose(model.weight.detach().numpy()[0], w, rtol=1e-10)


def test_gradient_clipping_scales_the_step_to_the_norm():
    model = _linear()
    stage = Stage("clip", ("train",), False, step=_mse(model), optimiser=Optimiser("sgd", 0.1), epochs=1,
                  batch_size=4, grad_clip=0.5)
    loop.train(stage, _inputs(model))
    w = np.array([0.3, -0.2])
    g = _grad(w, [0, 1, 2, 3])
    assert np.linalg.norm(g) > 0.5  # the clip acts
    expected = w - 0.1 * g * 0.5 / (np.linalg.norm(g) + 1e-6)  # torch's clip_grad_norm_: max_norm / (norm + 1e-6)
    np.testing.assert_allclose(model.weight.detach().numpy()[0], expected, rtol=1e-12)


def test_hooks_run_in_order_on_the_stages_seeded_generator():
    model = _linear()
    events = []

    def before(inputs, generator):
        events.append(("before", float(torch.rand(1, generator=generator))))

    def step(batch, generator, progress):
        events.append(("step", float(model.weight.detach()[0, 0])))
        return _mse(model)(batch, generator, progress)

    def after_step():
        events.append(("after", float(model.weight.detach()[0, 0])))

    stage = Stage("hooks", ("train",), False, step=step, optimiser=Optimiser("sgd", 0.1), epochs=1, batch_size=2,
                  before=before, after_step=after_step)
    loop.train(stage, _inputs(model, seed=7))
    assert events[0] == ("before", float(torch.rand(1, generator=torch.Generator().manual_seed(7))))
    assert [e[0] for e in events[1:]] == ["step", "after", "step", "after"]
    assert events[2][1] != events[1][1] and events[3][1] == events[2][1]  # after_step sees the updated weights


def test_a_stage_of_its_before_hook_alone_builds_no_optimiser(monkeypatch):
    model = _linear()
    called = []
    monkeypatch.setattr(torch.optim, "Adam", lambda *a, **k: pytest.fail("an optimiser was built"))
    trained = loop.train(Stage("pass", ("train",), False, before=lambda inputs, g: called.append(inputs.ids)),
                         _inputs(model))
    assert called == [tuple("0123")] and trained.epochs_run == 0


def test_selection_keeps_the_best_epochs_weights_and_stops_after_patience():
    model = _linear()
    scores, weights = [0.1, 0.5, 0.3, 0.2, 0.9], {}

    def score(epoch):
        weights[epoch] = model.weight.detach().clone()
        return scores[epoch - 1]

    stage = Stage("supervised", ("train",), True, step=_mse(model), optimiser=Optimiser("sgd", 0.05), epochs=5,
                  batch_size=4)
    trained = loop.train(stage, _inputs(model), selection=loop.Selection(score, patience=2))
    assert (trained.best_epoch, trained.epochs_run, trained.history) == (2, 4, [0.1, 0.5, 0.3, 0.2])
    assert torch.equal(model.weight.detach(), weights[2]) and not torch.equal(weights[2], weights[4])


def test_a_non_finite_loss_stops_with_the_stage_named():
    model = _linear()
    stage = Stage("adapter", ("train",), False, step=lambda batch, g, p: model(batch["x"]).sum() * float("nan"),
                  optimiser=Optimiser("sgd", 0.1), epochs=1, batch_size=4)
    with pytest.raises(SerbenchError, match="training loss is nan at epoch 1 of stage adapter"):
        loop.train(stage, _inputs(model))


# -- one loop: nothing else builds or steps an optimiser --------------------------------------

def optimiser_uses(source: str) -> list[str]:
    """Lines where ``source`` builds a torch optimiser or scheduler, imports from torch.optim,
    or steps an optimiser or scheduler (``x.step()`` on a name holding "opt" or "sched")."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("torch.optim"):
            found.append(f"{node.lineno}: from {node.module} import")
        elif isinstance(node, ast.Import) and any(a.name.startswith("torch.optim") for a in node.names):
            found.append(f"{node.lineno}: import torch.optim")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            chain = ast.unparse(node.func)
            if ".optim." in f".{chain}" and node.func.attr[:1].isupper():
                found.append(f"{node.lineno}: {chain}(...)")
            elif node.func.attr == "step" and any(w in ast.unparse(node.func.value).lower() for w in ("opt", "sched")):
                found.append(f"{node.lineno}: {chain}()")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
              and node.args and ast.unparse(node.args[0]).endswith("optim")):
            found.append(f"{node.lineno}: getattr({ast.unparse(node.args[0])}, ...)")
    return found


def test_the_check_finds_an_optimiser_built_or_stepped():
    source = ("import torch\nfrom torch.optim import SGD\nopt = torch.optim.Adam([])\n"
              "sched = torch.optim.lr_scheduler.LambdaLR(opt, f)\nopt.step()\nself.optimizer.step()\nsched.step()\n"
              "getattr(torch.optim, name)(params)\n")
    assert sorted({int(line.split(":")[0]) for line in optimiser_uses(source)}) == [2, 3, 4, 5, 6, 7, 8]
    assert optimiser_uses("model.step(batch)\nx = torch.optim\n") == []


def test_only_the_loop_builds_or_steps_an_optimiser():
    allowed = ROOT / "serbench" / "run" / "loop.py"
    offenders = []
    for folder in ("serbench", "serbench_plugins", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path != allowed:
                offenders += [f"{path.relative_to(ROOT)}:{line}" for line in optimiser_uses(path.read_text(encoding="utf-8"))]
    assert offenders == []
    assert optimiser_uses(allowed.read_text(encoding="utf-8"))  # the loop itself is seen by the check
