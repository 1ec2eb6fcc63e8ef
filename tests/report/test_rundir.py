"""RunDir and the job key: every path of a run directory from one class, named as runs made
before it named them (so existing run directories resume and report)."""

from __future__ import annotations

from pathlib import Path

import pytest

from serbench.api.errors import SerbenchError
from serbench.api.work import Job
from serbench.report.rundir import RunDir

# the layout serbench has written since job files existed (README of a run directory, test_methods' fused run)
WRITTEN_BEFORE = {
    "config": "config.json", "jobs_list": "jobs.json", "corpus": "corpus.json", "log": "run.log",
    "result": "result.json", "predictions": "predictions.csv", "predictions_perturbed": "predictions_perturbed.csv",
}


def test_the_run_files_keep_their_names(tmp_path):
    where = RunDir(tmp_path / "run")
    for attribute, name in WRITTEN_BEFORE.items():
        assert getattr(where, attribute) == tmp_path / "run" / name


def test_a_jobs_files_keep_their_names(tmp_path):
    where, job = RunDir(tmp_path), Job("3", 1)
    assert where.job_record(job) == tmp_path / "folds" / "fold-3_seed-1.json"
    assert where.job_predictions(job) == tmp_path / "folds" / "fold-3_seed-1.csv"
    assert where.job_dev(job) == tmp_path / "folds" / "fold-3_seed-1.dev.csv"
    assert where.job_perturbed(job) == tmp_path / "folds" / "fold-3_seed-1.perturbed.csv"
    assert where.failure(job) == tmp_path / "failed" / "fold-3_seed-1.json"
    assert where.claim(job) == tmp_path / "claims" / "fold-3_seed-1.claim"
    assert where.model(job) == (tmp_path / "models" / "fold-3_seed-1.json", tmp_path / "models" / "fold-3_seed-1.safetensors")
    assert where.stages(job) == tmp_path / "stages" / "fold-3_seed-1"
    assert where.job_record(("3", 1)) == where.job_record(job)  # a (fold, seed) pair read from a file is the same job


def test_a_fold_name_with_a_dot_keeps_its_own_files(tmp_path):
    # Path.with_suffix would have cut "fold-a.1_seed-0" to "fold-a.json": two folds, one file
    where = RunDir(tmp_path)
    assert where.job_record(Job("a.1", 0)) != where.job_record(Job("a.2", 0))
    assert where.model(Job("a.1", 0))[0].name == "fold-a.1_seed-0.json"


def test_a_fold_name_that_would_leave_the_folder_is_refused(tmp_path):
    with pytest.raises(SerbenchError, match="fold"):
        RunDir(tmp_path).job_record(Job("../../etc", 0))


@pytest.mark.parametrize("job", [Job("1", 0), Job("Ses01", 12), Job("a_seed-2", 3), Job("x.y-z", 2**31)])
def test_the_key_parses_back_to_its_job(job):
    assert Job.parse(job.key) == job


@pytest.mark.parametrize("text", ["1/0", "fold 1 seed 0", "fold-1_seed-x", "fold-_seed-1", "seed-1"])
def test_what_is_not_a_key_is_refused(text):
    with pytest.raises(ValueError, match="not a job key"):
        Job.parse(text)


def test_a_run_directory_is_a_path(tmp_path):
    assert Path(RunDir(tmp_path)) == tmp_path and RunDir(str(tmp_path)).name == tmp_path.name
