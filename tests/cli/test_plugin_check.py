"""``serbench check-plugin``: every built-in passes its conformance checks, and a plugin that
breaks one is caught with the check named."""

from __future__ import annotations

import pytest
import torch

from serbench.cli.check_plugin import check_downstream, check_plugin, check_pooling, check_upstream
from serbench.run.registry import registry

from conftest import run_cli

BUILT_INS = [(kind, name) for kind in ("upstream", "pooling", "downstream", "loss") for name in sorted(registry().specs[kind])
             if kind != "upstream" or name in ("fbank", "tiny")]  # the others need downloaded weights


@pytest.mark.parametrize("kind, name", BUILT_INS, ids=[f"{k}:{n}" for k, n in BUILT_INS])
def test_every_built_in_passes(kind, name):
    checks = check_plugin(kind, name)
    assert checks and all(c.passed for c in checks), [(c.name, c.detail) for c in checks if not c.passed]


class LeakyPooling(torch.nn.Module):
    """Averages every frame, padding included: a padding leak."""

    def __init__(self, dim):
        super().__init__()
        self.out_dim = dim

    def forward(self, frames, mask, batch=None):
        return frames.mean(dim=1)


class NoisyHead(torch.nn.Module):
    """Dropout applied even in eval mode: not deterministic."""

    def __init__(self, dim=16, classes=4):
        super().__init__()
        self.out = torch.nn.Linear(dim, classes)

    def forward(self, batch):
        pooled = (batch["features"][:, 0] * batch["mask"][..., None]).sum(1) / batch["mask"].sum(1, keepdim=True)
        return {"logits": self.out(torch.nn.functional.dropout(pooled, 0.5, training=True))}


def test_a_padding_leak_and_a_non_deterministic_head_are_caught():
    pooling = {c.name.split(" (")[0]: c for c in check_pooling(LeakyPooling(16), "leaky")}
    assert not pooling["padding invariance"].passed and not pooling["batch invariance"].passed
    assert pooling["output contract"].passed and pooling["determinism"].passed
    head = {c.name.split(" (")[0]: c for c in check_downstream(NoisyHead(), "noisy")}
    assert not head["determinism"].passed and head["output contract"].passed


def test_an_upstream_with_the_wrong_dim_fails_its_contract():
    from serbench_plugins.upstreams.fbank import Fbank

    wrong = Fbank(40)
    wrong.dim = 80  # declares 80, returns 40
    (contract,) = check_upstream(wrong, "wrong")
    assert not contract.passed and "dim=80" in contract.detail


@pytest.mark.e2e
def test_the_command_exits_0_when_all_pass_and_1_when_one_fails():
    passing = run_cli("check-plugin", "pooling", "mean")
    assert passing.returncode == 0 and "all 4 checks pass" in passing.stdout
    failing = run_cli("check-plugin", "executor", "slurm", env={"PATH": "/usr/bin:/bin"})  # no sbatch here
    assert failing.returncode == 1 and "no sbatch on PATH" in failing.stdout


@pytest.mark.e2e
def test_an_executor_is_checked_by_a_small_run_through_it(tmp_path, monkeypatch):
    """A pool of two workers gives the in-process run's metrics; an executor that loses a unit
    (its map skips the last job) fails, named."""
    from serbench.api.meta import ExecutorMeta
    from serbench.api.specs import Spec
    class Lossy:
        def slots(self, units):
            return 1

        def map(self, run_dir, units, device, reporter):
            for unit in list(units)[:-1]:  # (here, in this process: the lossy spec exists only in it)
                unit()
            return {}

    monkeypatch.setenv("SERBENCH_CACHE", str(tmp_path / "cache"))
    pool = check_plugin("executor", "local", ["executor.workers=2"])
    assert all(c.passed for c in pool) and pool[-1].detail == "summary identical", pool
    monkeypatch.setitem(registry().specs["executor"], "lossy",
                        Spec(name="lossy", factory=Lossy, summary="x", meta=ExecutorMeta()))
    lossy = {c.name: c for c in check_plugin("executor", "lossy")}
    through = lossy["the same run through lossy (from an empty cache)"]
    assert not through.passed and "1 of 5 jobs not done" in through.detail, through
    assert "SERBENCH_CACHE" not in through.detail and str(tmp_path / "cache") == __import__("os").environ["SERBENCH_CACHE"]


def test_declared_precisions_are_checked():
    from serbench.run import precision
    from serbench.run.registry import create

    def outcome(upstream):
        return {c.name.split(" (")[0]: c for c in check_upstream(upstream, "x")}["extraction precisions"]

    fbank = create("upstream", "fbank")
    assert outcome(fbank).passed and "fp32 only" in outcome(fbank).detail
    fbank.precisions = ("bf16",)  # fp32 is every upstream's
    assert not outcome(fbank).passed and "expected ('fp32',)" in outcome(fbank).detail
    tiny = outcome(create("upstream", "tiny"))
    assert tiny.passed
    if precision.device_supports_bf16(torch.device("cpu")):
        assert tiny.detail.startswith("bf16 forward within")
