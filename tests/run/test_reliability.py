"""Issue 12, first part: files get the umask's mode, bad seeds and fold names are refused
before anything is written, fuse never overwrites a run, a diverging job reports no score, and
a misspelled hook is named instead of registering silently."""

from __future__ import annotations

import os
import stat
import types

import numpy as np
import pytest

import serbench
from serbench.api.errors import SerbenchError

from lookalike import tiny_wav

FAST = ["protocol.per_class=1", "train.max_epochs=2"]


@pytest.fixture
def umask_022():
    before = os.umask(0o022)
    yield
    os.umask(before)


def test_written_files_get_the_umask_mode(tmp_path, umask_022):
    from serbench.api.atomic import write_text
    from serbench.run.cache import CacheKey, FeatureCache

    write_text(tmp_path / "a.json", "{}")
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644  # not mkstemp's 0600: a lab can share it
    cache = FeatureCache(tmp_path / "cache", CacheKey("fbank", "fp", (0,), "float16", 4, 100.0))
    cache.store("ab" * 16, np.zeros((1, 3, 4), dtype=np.float16))
    assert stat.S_IMODE(cache.path("ab" * 16).stat().st_mode) == 0o644
    os.umask(0o077)
    write_text(tmp_path / "b.json", "{}")
    assert stat.S_IMODE((tmp_path / "b.json").stat().st_mode) == 0o600  # the umask decides, as for open()


@pytest.mark.parametrize("seeds, message", [((0, 0), "seed 0 is given twice"), ((1, -1), "-1 is negative")])
def test_bad_seeds_are_refused(seeds, message):
    from serbench.run.plan import plan
    from serbench.run.request import RunRequest

    with pytest.raises(SerbenchError, match=message):
        plan(RunRequest("fbank", "superb", protocol="synthetic", seeds=seeds, device="cpu"))


def test_a_fold_name_that_would_leave_the_run_directory_is_refused(tmp_path):
    rows = [f"wav/{k}.wav,{'ab'[k % 2]},s{k % 4},{'x/../../victim' if k % 3 == 0 else 1 + k % 3}" for k in range(12)]
    for k in range(12):
        tiny_wav(tmp_path / "wav" / f"{k}.wav", k)
    (tmp_path / "corpus.csv").write_text("path,label,speaker,fold\n" + "\n".join(rows) + "\n")
    with pytest.raises(SerbenchError, match=r"fold name 'x/../../victim' cannot name a file"):
        serbench.run_benchmark("fbank", "superb", protocol="csv", data=tmp_path / "corpus.csv", out=tmp_path / "runs",
                     overrides=["train.max_epochs=1"])
    assert not (tmp_path / "runs").exists() and not (tmp_path.parent / "victim").exists()


def test_fuse_never_overwrites_a_run_directory(tmp_path):
    from serbench.report.fusion import fuse

    a = serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=tmp_path / "a", overrides=FAST)
    b = serbench.run_benchmark("fbank", "superb", pooling="std", protocol="synthetic", out=tmp_path / "b", overrides=FAST)
    before = (a.run_dir / "result.json").read_text()
    with pytest.raises(SerbenchError, match="already exists and is not empty"):
        fuse([a.run_dir, b.run_dir], a.run_dir)
    assert (a.run_dir / "result.json").read_text() == before
    # a run given twice (spelled two ways) would be fused or compared with itself
    with pytest.raises(SerbenchError, match=r"serbench fuse: .* is the same run as .* \(given twice\)"):
        fuse([a.run_dir, a.run_dir / "result.json"], tmp_path / "fused")
    from serbench.report.compare import compare

    with pytest.raises(SerbenchError, match=r"serbench compare: .* is the same run as .* \(given twice\)"):
        compare([b.run_dir, a.run_dir, tmp_path / "a" / ".." / "a" / a.run_dir.name])
    assert not (tmp_path / "fused").exists()


def test_a_diverging_job_reports_no_score(tmp_path):
    with pytest.raises(SerbenchError, match=r"jobs failed \(first: fold 1 seed 0: SerbenchError: .*(at|in|after) epoch 1\b.*nothing is scored"):
        serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=tmp_path, overrides=[*FAST, "train.lr=1e30"])
    (run_dir,) = list(tmp_path.iterdir())
    assert not (run_dir / "result.json").exists() and not list(run_dir.glob("folds/*.json"))
    assert "nothing is scored" in (run_dir / "failed" / "fold-1_seed-0.json").read_text()


def test_a_misspelled_hook_is_named():
    from serbench.api.hookspecs import hookimpl
    from serbench.run.plugin_manager import _unknown_hooks

    module = types.ModuleType("typo_plugin")
    module.register_pooling = hookimpl(lambda: [])
    assert _unknown_hooks(module) == "@hookimpl register_pooling is not a serbench hook (did you mean 'register_poolings'?)"
    module = types.ModuleType("fine_plugin")
    module.register_poolings = hookimpl(lambda: [])
    assert _unknown_hooks(module) == ""


def test_bumping_a_plugin_version_starts_a_new_run_and_new_cache_entries(tmp_path, monkeypatch):
    """A plugin whose output changed says so with its version: its old job files are not resumed
    and its old features are not served."""
    from dataclasses import replace

    from serbench.run.plan import load_plan
    from serbench.run.registry import registry

    first = serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=tmp_path, overrides=FAST)
    again = serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=tmp_path, overrides=FAST)
    assert again.run_dir == first.run_dir and again.data["cache"]["misses"] == 0  # nothing changed: all resumed
    specs = registry().specs["upstream"]
    monkeypatch.setitem(specs, "fbank", replace(specs["fbank"], version="2"))
    bumped = serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=tmp_path, overrides=FAST)
    assert bumped.run_dir != first.run_dir  # the old job files are not today's results
    assert bumped.data["cache"]["hits"] == 0 and bumped.data["cache"]["misses"] > 0  # nor are the old features
    assert bumped.data["plugins"]["fbank"] == "2"
    assert (f"not resumed: {first.run_dir.name} ran this command with other plugin versions (upstream fbank 1 -> 2)"
            in (bumped.run_dir / "run.log").read_text())
    with pytest.raises(SerbenchError, match=r"changed version since it ran \(upstream fbank 1 -> 2\)"):
        load_plan(first.run_dir)


@pytest.mark.e2e
def test_the_shuffled_label_control_sits_at_chance(tmp_path):
    """With permuted labels nothing is learnable: UA must sit at chance (25% over 4 balanced
    classes). Before training *and* epoch selection both saw permuted labels, selection on the
    true dev labels leaked them (34% here, its interval excluding chance)."""
    settings = ["protocol.per_class=4", "train.max_epochs=6"]
    control = serbench.run_benchmark("fbank", "superb", protocol="synthetic", seeds=(0, 1, 2), out=tmp_path,
                           overrides=[*settings, "train.shuffle_labels=true"])
    real = serbench.run_benchmark("fbank", "superb", protocol="synthetic", seeds=(0, 1, 2), out=tmp_path, overrides=settings)
    low, high = control.summary["ua"]["ci95"]
    assert low <= 0.25 <= high, control.summary["ua"]  # 15 jobs (5 folds x 3 seeds) at chance
    assert real.summary["ua"]["mean"] > high  # and the corpus does carry a learnable signal


def test_a_complete_read_only_cache_serves_a_run_and_an_incomplete_one_says_so(tmp_path, monkeypatch):
    """A shared cache is usually mounted read-only: hits take no lock and write nothing. (Tests
    run as root, which chmod cannot stop, so the folder's refusals are simulated at the calls
    that would write.)"""
    from serbench.run.cache import FeatureCache

    monkeypatch.setenv("SERBENCH_CACHE", str(tmp_path / "cache"))
    first = serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=tmp_path / "a", overrides=FAST)

    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(FeatureCache, "lock", refuse)
    monkeypatch.setattr(FeatureCache, "write_array", staticmethod(refuse))
    again = serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=tmp_path / "b", overrides=FAST)
    assert again.data["cache"]["misses"] == 0 and again.summary == first.summary
    with pytest.raises(SerbenchError, match=r"feature cache .* cannot be written \(Permission denied\) and lacks 40 entries"):
        serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=tmp_path / "c", overrides=[*FAST, "upstream.n_mels=40"])


def test_a_cache_entry_full_of_nan_stops_the_job_with_no_score(tmp_path, monkeypatch):
    """A damaged cache entry (NaN features) used to give NaN probabilities scored as UA 50."""
    import numpy as np

    from serbench.run.cache import FeatureCache

    monkeypatch.setenv("SERBENCH_CACHE", str(tmp_path / "cache"))
    serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=tmp_path / "a", overrides=FAST)
    for entry in sorted((tmp_path / "cache" / "features").glob("*/*/*.npy")):
        array = np.load(entry)
        FeatureCache.write_array(entry, np.full_like(array, np.nan))
    with pytest.raises(SerbenchError, match=r"jobs failed \(first: fold 1 seed 0: SerbenchError: .*(NaN|nan)"):
        serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=tmp_path / "b", overrides=FAST)
    assert not list((tmp_path / "b").glob("*/result.json")) and not list((tmp_path / "b").glob("*/folds/*.json"))


def test_ctrl_c_inside_a_long_native_call_stops_the_process():
    """KeyboardInterrupt waits for a native call to return (a backward pass took minutes); the
    watcher woken by the signal itself ends the process after its grace period (0 here). The
    child sits in one large matrix product (seconds on a CPU, torch releases the GIL in it)."""
    import signal
    import subprocess
    import sys

    child = subprocess.Popen(
        [sys.executable, "-c", "import torch\nfrom serbench.run.interrupt import stop_within_seconds\n"
         "a = torch.randn(6000, 6000)\nstop_within_seconds(0.0)\nprint('ready', flush=True)\ntorch.mm(a, a)\n"
         "print('the product ended first', flush=True)"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    child.send_signal(signal.SIGINT)
    try:
        _, err = child.communicate(timeout=600)  # a guard against a hang, not a timing check
    finally:
        child.kill()
    assert child.returncode == 130 and "stopped now. Finished jobs are kept" in err


@pytest.mark.parametrize("damage", ["truncated", "another model's"])
def test_a_damaged_stage_checkpoint_is_computed_again_with_the_same_result(tmp_path, damage):
    import torch

    small = ["protocol.per_class=1", "train.max_epochs=1", "downstream.adapter_epochs=1", "downstream.prototypes=8",
             "downstream.adapter_batch_size=8", "downstream.width=24", "downstream.blocks=1"]
    first = serbench.run_benchmark("fbank", "wap_la", protocol="synthetic", out=tmp_path, overrides=small)
    (checkpoint,) = sorted((first.run_dir / "stages" / "fold-1_seed-0").glob("*.pt"))
    if damage == "truncated":
        checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    else:
        torch.save({"weight": torch.zeros(3)}, checkpoint)
    for stale in first.run_dir.glob("folds/fold-1_seed-0*"):
        stale.unlink()
    (first.run_dir / "result.json").unlink()
    again = serbench.run_benchmark("fbank", "wap_la", protocol="synthetic", out=tmp_path, overrides=small)
    assert again.summary == first.summary
    assert "cannot be used" in (first.run_dir / "run.log").read_text()


def test_a_pipe_in_a_name_does_not_break_the_markdown_table(tmp_path):
    from serbench.report.leaderboard import markdown
    from serbench.report.results import Result

    entry = {"mean": 0.5, "std": 0.01, "ci95": [0.45, 0.55], "ci95_bootstrap": [0.44, 0.56]}
    data = {"run_id": "r", "config": {"protocol": "csv:a|b.csv", "upstream": "hf:x|y", "downstream": "superb",
                                      "pooling": "mean", "seeds": [0]},
            "summary": {m: entry for m in ("ua", "wa", "macro_f1")}}
    table = markdown([Result(data, tmp_path / "r")])
    header, _, row = table.splitlines()[:3]
    assert row.count(" | ") == header.count(" | ") and "csv:a\\|b.csv" in row and "hf:x\\|y" in row


def test_a_protocol_that_returns_a_list_is_named(tmp_path, monkeypatch):
    from serbench.api.meta import ProtocolMeta
    from serbench.api.specs import Spec
    from serbench.run.registry import registry

    monkeypatch.setitem(registry().specs["protocol"], "listy",
                        Spec(name="listy", factory=lambda data: [], summary="x", plugin="acme", meta=ProtocolMeta()))
    with pytest.raises(SerbenchError, match=r"protocol listy \(plugin 'acme'\) returned list, not a serbench\.api\.protocol\.Protocol"):
        serbench.run_benchmark("fbank", "superb", protocol="listy", out=tmp_path)
    assert not list(tmp_path.iterdir())
