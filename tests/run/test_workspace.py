"""The workspace is frozen and passed: loading a job's inputs gives a new one, a worker's reuse
of it between units is a cache object it owns, and a job run from data alone scores the same."""

from __future__ import annotations

import dataclasses
import json

import pytest

from serbench.api.progress import Reporter
from serbench.api.work import Job, WorkUnit
from serbench.report.rundir import RunDir
from serbench.run import execute
from serbench.run.plan import plan
from serbench.run.request import RunRequest

SMALL = ["protocol.per_class=1", "train.max_epochs=1"]


@pytest.fixture
def prepared(tmp_path, monkeypatch):
    monkeypatch.setenv("SERBENCH_CACHE", str(tmp_path / "cache"))
    the_plan = plan(RunRequest("fbank", "superb", protocol="synthetic", device="cpu", overrides=SMALL))
    run_dir = tmp_path / "runs" / the_plan.run_id
    ws = execute.prepare(the_plan, run_dir)
    execute.open_run(ws)
    return ws


def test_loading_inputs_leaves_the_workspace_as_it_was(prepared):
    with pytest.raises(dataclasses.FrozenInstanceError):
        prepared.features = {}
    loaded, _ = execute.load_inputs(prepared, [Job("1", 0)], Reporter(quiet=True))
    fold = next(f for f in prepared.protocol.folds if f.name == "1")
    assert prepared.features is None
    assert set(loaded.features) == set(fold.train + fold.dev + fold.test)
    assert loaded.protocol is prepared.protocol and loaded.upstream is prepared.upstream


def test_a_worker_cache_keeps_one_run_directorys_workspace(prepared, tmp_path):
    cache = execute.WorkspaceCache()
    run_dir = prepared.run_dir
    first = cache.get(run_dir, "cpu")
    assert cache.get(run_dir, "cpu") is first  # the next unit of the same run reuses it
    assert cache.get(run_dir, "auto") is not first  # another device: rebuilt
    assert first.plan.run_id == prepared.plan.run_id


def test_a_unit_run_with_and_without_a_cache_writes_the_same_job(prepared, tmp_path):
    run_dir = RunDir(prepared.run_dir)
    unit = WorkUnit(str(run_dir.path), Job("1", 0), "cpu", execute.work_unit)
    assert unit() == "fold 1 seed 0: done"
    without = json.loads(run_dir.job_record(Job("1", 0)).read_text())["metrics"]
    run_dir.job_record(Job("1", 0)).unlink()
    state: dict = {}
    cached = WorkUnit(str(run_dir.path), Job("1", 0), "cpu", execute.work_unit, execute.WorkspaceCache)
    assert cached.cached_in(state) == "fold 1 seed 0: done"
    assert isinstance(state["cache"], execute.WorkspaceCache)
    assert json.loads(run_dir.job_record(Job("1", 0)).read_text())["metrics"] == without
