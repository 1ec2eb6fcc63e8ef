"""WAP-LA's equations against direct computations, and multi-stage fold hygiene and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

import serbench
from serbench.api.errors import SerbenchError
from serbench.api.stages import Stage
from serbench.run.registry import create
from serbench.run.stages import GuardedBatcher, check
from serbench_plugins.wap_la import model as wap_la
from serbench_plugins.wap_la.model import assign, cosine_logits, ema_update, lambda_at, random_positions, update_prototypes

SMALL = ["protocol.per_class=1", "train.max_epochs=1", "downstream.adapter_epochs=1", "downstream.prototypes=8",
         "downstream.adapter_batch_size=8", "downstream.width=24", "downstream.blocks=2"]


def test_ema_update_is_equation_2():
    student, teacher = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in teacher.parameters()]
    ema_update(teacher, student, 0.9)
    for t, b, s in zip(teacher.parameters(), before, student.parameters()):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * s)


def test_masked_positions_are_valid_frames_at_the_ratio():
    mask = torch.arange(10)[None, :] < torch.tensor([[10], [5], [1]])
    chosen = random_positions(mask, 0.4, torch.Generator().manual_seed(0))
    assert not (chosen & ~mask).any()
    assert chosen.sum(1).tolist() == [4, 2, 1]


def test_assignment_and_prototype_update_are_equations_4_and_5():
    prototypes = torch.tensor([[0.0, 0.0], [10.0, 10.0], [-5.0, 5.0]])
    frames = torch.tensor([[1.0, 0.0], [9.0, 11.0], [0.0, 1.0], [11.0, 9.0]])
    labels = assign(frames, prototypes)
    assert labels.tolist() == [0, 1, 0, 1]
    updated = prototypes.clone()
    update_prototypes(updated, frames, labels, eta=0.5)
    torch.testing.assert_close(updated[0], prototypes[0] + 0.5 * (frames[[0, 2]].mean(0) - prototypes[0]))
    torch.testing.assert_close(updated[1], prototypes[1] + 0.5 * (frames[[1, 3]].mean(0) - prototypes[1]))
    torch.testing.assert_close(updated[2], prototypes[2])  # no frame, no move


def test_cosine_logits_and_lambda_ramp():
    frames, prototypes = torch.randn(5, 4), torch.randn(3, 4)
    expected = torch.stack([torch.stack([F.cosine_similarity(f, p, dim=0) for p in prototypes]) for f in frames]) / 0.1
    torch.testing.assert_close(cosine_logits(frames, prototypes, 0.1), expected, atol=1e-5, rtol=1e-5)
    assert [lambda_at(p) for p in (0.0, 0.5, 1.0, 2.0)] == [1.0, 0.75, 0.5, 0.5]


def test_statistical_attentive_pooling_formula():
    pooling = create("pooling", "sap_stat", 3, heads=2)
    frames = torch.randn(2, 5, 3)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.bool)
    out = pooling(frames, mask, {})
    padded = frames.clone()
    padded[1, 2:] = 99.0
    torch.testing.assert_close(pooling(padded, mask, {}), out)
    for b in range(2):
        z = frames[b, mask[b]]
        a = torch.softmax(pooling.attention(z), dim=0)  # [T, K]
        mu = z.T @ a
        var = (z * z).T @ a - mu * mu
        expected = torch.cat([F.normalize(mu.flatten(), dim=0), F.normalize(var.flatten(), dim=0)])
        torch.testing.assert_close(out[b], expected, atol=1e-5, rtol=1e-5)


def test_a_stage_that_would_read_test_is_refused_and_the_guard_holds():
    with pytest.raises(SerbenchError, match="stage peek of m declares it reads 'test': refused"):
        check([Stage("peek", ("train", "test"), False, lambda s: None)], "m")
    guard = GuardedBatcher(lambda ids, labels, train: {"ids": ids, "labels": torch.zeros(len(ids))}, ["a", "b"], False, "s")
    assert "labels" not in guard(["a"])
    with pytest.raises(SerbenchError, match="stage s asked for utterance c, outside the splits it declared"):
        guard(["a", "c"])


@pytest.mark.e2e  # an in-process staged training: 15-108 s in the default run at load 4-13
def test_no_stage_sees_a_test_utterance_and_a_rerun_resumes(tmp_path, monkeypatch, stage_feed):
    result = serbench.run_benchmark("tiny", "wap_la", protocol="synthetic", out=tmp_path, overrides=SMALL)
    protocol = create("protocol", "synthetic", None, per_class=1)
    assert len(stage_feed) == 5
    for seen, fold in zip(stage_feed, protocol.folds):
        assert list(seen) == ["adapter"]
        assert seen["adapter"] == set(fold.train) | set(fold.dev)  # all of train and dev, no test
    # interrupt: fold 2's supervised stage never finished; its adapter stage did
    (result.run_dir / "folds" / "fold-2_seed-0.json").unlink()

    def refuse(self, stage, generator):
        raise AssertionError("stage 1 ran again although its output was saved")

    monkeypatch.setattr(wap_la.WapLa, "draw_prototypes", refuse)
    again = serbench.run_benchmark("tiny", "wap_la", protocol="synthetic", out=tmp_path, overrides=SMALL)
    assert "stage adapter: resumed" in (again.run_dir / "run.log").read_text()
    assert len(again.data["folds"]) == 5


def test_ablation_without_adapter_training_has_no_stage(tmp_path):
    result = serbench.run_benchmark("tiny", "wap_la", protocol="synthetic", out=tmp_path,
                          overrides=SMALL + ["downstream.adapter_training=false"])
    assert not (result.run_dir / "stages").exists()
    assert np.isfinite(result.summary["ua"]["mean"])


def _wap_la(counts, **params):
    from serbench.api.downstream import DownstreamContext

    context = DownstreamContext(1, 16, 50.0, ("neu", "hap", "ang", "sad"), lambda d: None, counts)
    torch.manual_seed(0)
    return create("downstream", "wap_la", context, **({"width": 24, "blocks": 1, "prototypes": 8} | params))


def test_minority_classes_are_oversampled_to_balance_each_epoch():
    counts = (1708, 1636, 1103, 1084)  # IEMOCAP's four classes
    model = _wap_la(counts).train()
    labels = torch.tensor([k for k, n in enumerate(counts) for _ in range(n // 20)])  # a 1/20 "epoch"
    seen = torch.zeros(4)
    for _ in range(40):
        batch = {"features": torch.randn(len(labels), 1, 12, 16), "mask": torch.ones(len(labels), 12, dtype=torch.bool),
                 "labels": labels}
        out = model(batch)
        assert out["logits"].shape[0] == out["labels"].shape[0] >= len(labels)
        torch.testing.assert_close(out["labels"][: len(labels)], labels)  # the originals first, unmasked
        seen += torch.bincount(out["labels"], minlength=4)
    per_epoch = seen / 40 * 20
    np.testing.assert_allclose(per_epoch.numpy(), 1708, rtol=0.03)  # every class as often as the largest


def test_teacher_has_no_dropout_in_training():
    model = _wap_la((5, 5, 5, 5)).train()
    assert model.adapter.training and not model.teacher.training
    assert not any(m.training for m in model.teacher.modules())


def test_patch_groups_consecutive_frames_into_tokens():
    model = _wap_la((5, 5, 5, 5), patch=3)
    features = torch.randn(2, 1, 7, 16)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    x, valid = model.tokens({"features": features, "mask": mask})
    assert x.shape == (2, 3, 48)  # 7 frames -> 3 tokens of 3 frames, the last padded with zeros
    torch.testing.assert_close(x[0, 1], features[0, 0, 3:6].reshape(-1))
    torch.testing.assert_close(x[0, 2], torch.cat([features[0, 0, 6], torch.zeros(32)]))
    assert valid.tolist() == [[True, True, True], [True, True, False]]  # the 4th frame makes the 2nd token valid
    with pytest.raises(SerbenchError, match=r"downstream wap_la\.patch: 0 is out of range \(must be >= 1\)"):
        _wap_la((5, 5, 5, 5), patch=0)


@pytest.mark.e2e  # an in-process staged training: 15-108 s in the default run at load 4-13
def test_bf16_training_runs_both_stages(tmp_path):
    """``-o train.bf16=true``: the teacher's frames come out of autocast in bf16, the
    prototypes stay float32 (their running means would lose precision in bf16)."""
    result = serbench.run_benchmark("tiny", "wap_la", protocol="synthetic", out=tmp_path, overrides=SMALL + ["train.bf16=true"])
    assert result.data["config"]["params"]["train"]["bf16"] is True
    state = torch.load(result.run_dir / "stages" / "fold-1_seed-0" / "1-adapter.pt", weights_only=True)
    assert state["prototypes"].dtype == torch.float32 and torch.isfinite(state["prototypes"]).all()
    assert np.isfinite(result.summary["ua"]["mean"])


def test_prototype_update_in_bf16_matches_float32():
    prototypes = torch.tensor([[0.0, 0.0], [10.0, 10.0]])
    frames = torch.tensor([[1.0, 0.0], [9.0, 11.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 0])
    expected = prototypes.clone()
    update_prototypes(expected, frames, labels, eta=0.5)
    got = prototypes.clone()
    update_prototypes(got, frames.bfloat16(), labels, eta=0.5)  # hand values, exact in bf16
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected)


# The paper's table, by hand from the source line the plugin cites (Song et al.): the adapter
# stage runs Adam at lr 1e-4 with a cosine schedule, batch 96, 100 epochs; the supervised stage
# batch 96, 100 epochs. Every other field must be marked as the plugin's own choice.
PAPER = {"adapter": {"optimiser": "Adam", "lr": 1e-4, "schedule": "cosine", "epochs": 100, "batch": 96},
         "supervised": {"epochs": 100, "batch": 96}}


def _optimisers(monkeypatch) -> list[tuple[str, float, float]]:
    """(class, lr, weight decay) of every optimiser the run builds, in order."""
    built = []
    for name in ("Adam", "AdamW"):
        cls = getattr(torch.optim, name)

        def spy(params, *args, _cls=cls, **kwargs):
            optimiser = _cls(params, *args, **kwargs)
            group = optimiser.param_groups[0]
            built.append((_cls.__name__, group["lr"], group["weight_decay"]))
            return optimiser

        monkeypatch.setattr(torch.optim, name, spy)
    return built


def test_recorded_stage_recipe_is_the_papers_or_named_and_is_what_ran(tmp_path, monkeypatch):
    built = _optimisers(monkeypatch)
    overrides = SMALL + ["train.max_epochs=2"]
    result = serbench.run_benchmark("tiny", "wap_la", protocol="synthetic", out=tmp_path, overrides=overrides)
    record = result.data["config"]["recipe"]
    stages = {row["stage"]: row for row in record["stages"]}
    assert list(stages) == ["adapter", "supervised"]
    for stage, row in stages.items():
        for field in ("optimiser", "lr", "schedule", "epochs", "batch", "stopping"):
            value, origin = row[field]["value"], row[field]["from"]
            if origin == "paper":
                expected = PAPER[stage][field]
                assert expected in value if isinstance(expected, str) else value == expected, (stage, field)
            elif origin == "user":
                assert field in ("epochs", "batch"), (stage, field)
            elif origin == "demo":  # the demo-sized variant (synthetic is a demo corpus)
                assert (stage, field) in {("adapter", "epochs"), ("supervised", "lr"), ("supervised", "batch")}
            else:  # the plugin's own: a field the paper does not give, never a paper value relabelled
                assert origin == "plugin" and field not in PAPER[stage], (stage, field)
    # the values in force are the recorded ones: -o, then the demo variant, then the paper's
    assert stages["adapter"]["epochs"] == {"value": 1, "from": "demo", "key": "downstream.adapter_epochs"}  # -o gave the demo's value: not the user's
    assert stages["adapter"]["batch"] == {"value": 8, "from": "user", "key": "downstream.adapter_batch_size"}
    assert stages["supervised"]["lr"] == {"value": 1e-3, "from": "demo", "key": "train.lr"}
    assert stages["supervised"]["epochs"] == {"value": 2, "from": "user", "key": "train.max_epochs"}
    assert stages["supervised"]["schedule"] == {"value": "cosine", "from": "plugin"}
    assert "patience 100 epochs" in stages["supervised"]["stopping"]["value"]
    assert "fine-tunes the student adapter, not the EMA teacher" in stages["supervised"]["notes"]
    # ... and what ran: per fold, Adam at the adapter lr, then AdamW without weight decay at the demo lr
    assert built[:2] == [("Adam", 1e-4, 0), ("AdamW", 1e-3, 0.0)]
    assert len(built) == 2 * 5
    jobs = [json.loads(p.read_text()) for p in (result.run_dir / "folds").glob("fold-*_seed-0.json")]
    assert len(jobs) == 5 and all(job["epochs_run"] == 2 for job in jobs)  # patience 100: no early stop
    first = (result.run_dir / "run.log").read_text().splitlines()
    assert any("stages: adapter: optimiser Adam (no weight decay) (paper), lr 0.0001 (paper)" in line for line in first[:3])


def test_reported_rows_say_the_checkpoint_is_unclear_with_both_candidates(tmp_path):
    from serbench.report.leaderboard import checkpoint_differs
    from serbench.report.results import Result
    from serbench.run.registry import registry

    rows = registry().get("downstream", "wap_la").meta.reported
    for row in rows:
        assert row["checkpoint"].startswith("unclear: 'HuBERT-large-960'")
        assert "facebook/hubert-large-ls960-ft" in row["checkpoint"] and "facebook/hubert-large-ll60k" in row["checkpoint"]
        assert "no dev carve-out" in row["train_split"]
    run = Result({"config": {"upstream": "hubert_large"}, "upstream_fingerprint": "facebook/hubert-large-ll60k@ff022d"},
                 tmp_path)
    assert checkpoint_differs(rows[0], run) == "the paper's checkpoint is unclear"


def test_stage_table_lists_only_the_stages_that_run_and_who_set_each_value():
    from serbench.run.plan import plan
    from serbench.run.request import RunRequest

    ablation = plan(RunRequest("tiny", "wap_la", protocol="synthetic", overrides=["downstream.adapter_training=false"]))
    assert [row["stage"] for row in ablation.config["recipe"]["stages"]] == ["supervised"]
    user_wins = plan(RunRequest("tiny", "wap_la", protocol="synthetic", overrides=["train.lr=0.01", "downstream.adapter_lr=0.002"]))
    stages = {row["stage"]: row for row in user_wins.config["recipe"]["stages"]}
    assert stages["supervised"]["lr"] == {"value": 0.01, "from": "user", "key": "train.lr"}  # over the demo's 1e-3
    assert stages["adapter"]["lr"] == {"value": 0.002, "from": "user", "key": "downstream.adapter_lr"}
    assert stages["supervised"]["optimiser"] == {"value": "AdamW, weight decay 0.0 (0: Adam)", "from": "plugin"}
    assert "stages" not in plan(RunRequest("tiny", "wap_la", protocol="synthetic", recipe="shared")).config["recipe"]
