"""Executors: the same 5-fold synthetic run gives identical per-job metrics in one process,
in a local pool of 2 workers, on a local Ray and through submitit's local executor; a job that
raises is recorded and the others finish; the Slurm array script carries every option."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time

import pytest

from serbench.report import claims

from conftest import run_cli

RUN = ["run", "--upstream", "fbank", "--downstream", "superb", "--protocol", "synthetic", "--quiet",
       "-o", "protocol.per_class=4", "-o", "train.max_epochs=3", "--device", "cpu"]


def _fold_metrics(run_dir):
    return {p.name: json.loads(p.read_text())["metrics"] for p in sorted((run_dir / "folds").glob("*.json"))}


def _only_run(out):
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The run in one process, and its cache (every executor below starts from an empty one)."""
    out = tmp_path_factory.mktemp("reference")
    done = run_cli(*RUN, "--out", str(out / "runs"), env={"SERBENCH_CACHE": str(out / "cache")})
    assert done.returncode == 0, done.stderr
    return _only_run(out / "runs")


CASES = {
    "local-2": ["--executor", "local", "-o", "executor.workers=2"],
    "slurm-local": ["--executor", "slurm", "-o", "executor.cluster=local", "-o", "executor.gpus=0",
                    "-o", "executor.cpus=1", "-o", "executor.time=10", "-o", "executor.poll=0.2"],
    "ray-local": ["--executor", "ray", "-o", "executor.local_cpus=2", "-o", "executor.num_cpus=1"],
}


@pytest.mark.e2e
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_executor_gives_the_metrics_of_one_process(case, reference, tmp_path):
    if case.startswith("ray"):
        pytest.importorskip("ray", reason="the ray executor needs pip install 'serbench[ray]'")
    if case.startswith("slurm"):
        pytest.importorskip("submitit", reason="the slurm executor needs pip install 'serbench[slurm]'")
    done = run_cli(*RUN, *CASES[case], "--out", str(tmp_path / "runs"), env={"SERBENCH_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    run_dir = _only_run(tmp_path / "runs")
    assert run_dir.name == reference.name  # the executor is not part of the run's identity
    assert _fold_metrics(run_dir) == _fold_metrics(reference)
    result, expected = (json.loads((d / "result.json").read_text()) for d in (run_dir, reference))
    assert result["summary"] == expected["summary"]
    log = (run_dir / "run.log").read_text()
    assert "in 2 shards" in log  # features extracted by two workers side by side, into the cache
    features = list((tmp_path / "cache" / "features").glob("*/*/*.npy"))
    assert len(features) == json.loads((run_dir / "corpus.json").read_text())["utterances"]
    executor = json.loads((run_dir / "config.json").read_text())["executor"]
    assert executor["name"] == case.split("-")[0]  # recorded where it ran, outside the run's identity
    if case.startswith("slurm"):
        assert list((run_dir / "slurm").glob("*/*_log.out"))  # submitit's logs under the run directory


@pytest.mark.e2e
def test_a_failing_job_is_recorded_and_the_others_finish(tmp_path):
    """Fold 3's job cannot write its dev predictions (a directory stands at that path); the
    pool finishes the other four, the failure and its traceback are in failed/ and in serbench
    status, and a rerun computes only fold 3."""
    from serbench.run.plan import plan
    from serbench.run.request import RunRequest

    run_dir = tmp_path / "runs" / plan(RunRequest("fbank", "superb", None, None, "synthetic", None, (0,), "cpu",
                                       ["protocol.per_class=4", "train.max_epochs=3"])).run_id
    blocker = run_dir / "folds" / "fold-3_seed-0.dev.csv"
    blocker.mkdir(parents=True)
    env = {"SERBENCH_CACHE": str(tmp_path / "cache")}
    failed = run_cli(*RUN, "--executor", "local", "-o", "executor.workers=2", "--out", str(tmp_path / "runs"), env=env)
    assert failed.returncode != 0
    assert "1 jobs failed (first: fold 3 seed 0: IsADirectoryError" in failed.stderr
    assert sorted(_fold_metrics(run_dir)) == [f"fold-{k}_seed-0.json" for k in (1, 2, 4, 5)]
    record = json.loads((run_dir / "failed" / "fold-3_seed-0.json").read_text())
    assert "IsADirectoryError" in record["traceback"] and "write_job" in record["traceback"]
    status = run_cli("status", str(run_dir))
    assert "4 done, 1 failed" in status.stdout, status.stdout
    blocker.rmdir()
    again = run_cli(*RUN, "--out", str(tmp_path / "runs"), env=env)
    assert again.returncode == 0, again.stderr
    assert "resuming: 4 of 5 jobs already done" in (run_dir / "run.log").read_text()
    assert not (run_dir / "failed" / "fold-3_seed-0.json").exists()


@pytest.mark.e2e
def test_a_pool_worker_killed_midway_leaves_a_job_the_next_run_completes(reference, tmp_path):
    env = {**os.environ, "SERBENCH_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "serbench", *RUN, "-o", "executor.workers=2", "--out", str(tmp_path / "runs")]
    parent = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    owner = None
    while parent.poll() is None and owner is None:  # no wall-clock limit: a loaded machine may be slow
        for claim in (tmp_path / "runs").glob("*/claims/*.claim"):
            owner = claims.read_owner(claim)
            if owner:
                break
        time.sleep(0.05)
    assert owner is not None and owner["pid"] != parent.pid, "no job was claimed by a worker"
    os.kill(owner["pid"], signal.SIGKILL)
    _, err = parent.communicate()
    assert parent.returncode != 0 and "jobs failed" in err  # the parent says so, and exits
    again = run_cli(*RUN, "-o", "executor.workers=2", "--out", str(tmp_path / "runs"), env={"SERBENCH_CACHE": str(tmp_path / "cache")})
    assert again.returncode == 0, again.stderr
    run_dir = _only_run(tmp_path / "runs")
    assert _fold_metrics(run_dir) == _fold_metrics(reference)
    assert json.loads((run_dir / "result.json").read_text())["summary"] == \
        json.loads((reference / "result.json").read_text())["summary"]


@pytest.mark.e2e
def test_any_scheduler_by_hand_prepare_shards_jobs_finish(reference, tmp_path):
    env = {"SERBENCH_CACHE": str(tmp_path / "cache")}
    prepared = run_cli(*RUN, "--prepare", "--out", str(tmp_path / "runs"), env=env)
    assert prepared.returncode == 0, prepared.stderr
    run_dir = _only_run(tmp_path / "runs")
    commands = [line.split()[1:] for line in prepared.stdout.splitlines() if line.startswith("  serbench job")]
    assert not list(run_dir.glob("folds/*.json")) and len(commands) == 6  # nothing computed; shards + 5 jobs
    for shard in ("1/2", "2/2"):
        done = run_cli("job", str(run_dir), "--shard", shard, "--device", "cpu", env=env)
        assert done.returncode == 0 and f"features shard {shard}: done" in done.stdout, done.stderr
    extracted = list((tmp_path / "cache" / "features").glob("*/*/*.npy"))
    assert len(extracted) == json.loads((run_dir / "corpus.json").read_text())["utterances"]
    done = run_cli(*commands[1], "--device", "cpu", env=env)  # one job as the scheduler's task runs it
    assert done.returncode == 0, done.stderr
    rest = run_cli("job", str(run_dir), "--device", "cpu", env=env)  # then every job still claimable
    assert rest.returncode == 0, rest.stderr
    lookups = re.findall(r"cache: (\d+) hits, (\d+) misses", (run_dir / "run.log").read_text())
    assert len(lookups) >= 4 and all(misses == "0" for _, misses in lookups[2:])  # jobs read the shards' features
    finished = run_cli("finish", str(run_dir), env=env)
    assert finished.returncode == 0, finished.stderr
    assert _fold_metrics(run_dir) == _fold_metrics(reference)


def _units(run_dir, units, device="cpu"):
    """Jobs and shards as the runner hands them to an executor."""
    from serbench.api.work import WorkUnit
    from serbench.run.execute import work_unit

    return [WorkUnit(str(run_dir), unit, device, work_unit) for unit in units]


def test_the_slurm_array_script_carries_every_option(tmp_path, monkeypatch):
    """A fake sbatch on PATH records the script submitit generates; without one the error says so."""
    pytest.importorskip("submitit", reason="the slurm executor needs pip install 'serbench[slurm]'")
    from serbench.api.errors import SerbenchError
    from serbench.api.work import Job, Shard
    from serbench.run.registry import registry

    spec, path = registry().get("executor", "slurm"), os.environ["PATH"]
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SerbenchError, match="no sbatch on PATH"):
        spec.build(**spec.resolve({}, "-o executor")).submit(tmp_path / "run", _units(tmp_path / "run", [Job("1", 0)]), "cpu")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(f'#!/bin/sh\ncp "$1" {tmp_path}/script.sh\necho "Submitted batch job 4242"\n')
    sbatch.chmod(sbatch.stat().st_mode | stat.S_IEXEC)
    srun = bin_dir / "srun"  # submitit looks for it before submitting
    srun.write_text("#!/bin/sh\nexit 0\n")
    srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{path}")
    params = spec.resolve({"partition": "gpu", "gpus": 2, "cpus": 6, "mem_gb": 40, "time": 90, "account": "emo",
                           "parallelism": 3, "setup": "module load cuda; source /opt/venv/bin/activate"}, "-o executor")
    executor = spec.build(**params)
    units = [Shard(0, 2), Shard(1, 2)] + [Job(str(k), 0) for k in range(1, 4)]
    jobs = executor.submit(tmp_path / "run", _units(tmp_path / "run", units), "cpu")
    assert [job.job_id for job in jobs] == [f"4242_{k}" for k in range(5)]
    script = (tmp_path / "script.sh").read_text()
    for line in ("#SBATCH --array=0-4%3", "#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=2",
                 "#SBATCH --cpus-per-task=6", "#SBATCH --mem=40GB", "#SBATCH --time=90", "#SBATCH --account=emo",
                 "module load cuda", "source /opt/venv/bin/activate"):
        assert line in script, line
    assert f"{tmp_path}/run/slurm/%A_%a" in script  # logs per task under the run directory


def _fake_slurm(tmp_path, monkeypatch, scontrol: str = "#!/bin/sh\necho 'Slurmctld(primary) at ctl-1 is UP'\n"):
    """sbatch (keeps the script it is given), srun and scontrol on PATH, as on a login node."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("sbatch", f'#!/bin/sh\ncp "$1" {tmp_path}/script.sh\necho "Submitted batch job 4242"\n'),
                       ("srun", "#!/bin/sh\nexit 0\n"), ("scontrol", scontrol)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize("device, gpus_line", [("cpu", None), ("cuda", "#SBATCH --gpus-per-node=1")])
def test_slurm_asks_for_a_gpu_only_for_a_cuda_run_by_default(device, gpus_line, tmp_path, monkeypatch):
    """gpus=-1 (the default) follows the run's device: a CPU run's array asks for no GPU, a cuda
    run's for one per task (and its tasks run on cuda)."""
    pytest.importorskip("submitit", reason="the slurm executor needs pip install 'serbench[slurm]'")
    from serbench.api.work import Job
    from serbench.run.registry import registry

    _fake_slurm(tmp_path, monkeypatch)
    spec = registry().get("executor", "slurm")
    params = spec.resolve({}, "-o executor")
    assert params["gpus"] == -1
    executor = spec.build(**params)
    executor.submit(tmp_path / "run", _units(tmp_path / "run", [Job("1", 0)]), device)
    script = (tmp_path / "script.sh").read_text()
    gpu_lines = [line for line in script.splitlines() if re.match(r"#SBATCH --(gpus|gres)", line)]
    assert gpu_lines == ([gpus_line] if gpus_line else [])
    assert executor.gpus_for(device) == (1 if gpus_line else 0)


@pytest.mark.parametrize("scontrol, message", [
    ("#!/bin/sh\nexec sleep 30\n", r"the Slurm controller \(ctl-7 in .*slurm\.conf\) did not answer scontrol ping within "
                                     r"0\.5 s \(-o executor\.connect_timeout\)"),
    ("#!/bin/sh\necho 'Slurmctld(primary) at ctl-7 is DOWN'\nexit 1\n",
     r"the Slurm controller \(ctl-7 in .*\) is not reachable: scontrol ping says 'Slurmctld\(primary\) at ctl-7 is DOWN'"),
])
def test_an_unreachable_slurm_controller_is_refused_before_submitting(scontrol, message, tmp_path, monkeypatch):
    pytest.importorskip("submitit", reason="the slurm executor needs pip install 'serbench[slurm]'")
    from serbench.api.errors import SerbenchError
    from serbench.run.registry import registry

    _fake_slurm(tmp_path, monkeypatch, scontrol)
    (tmp_path / "slurm.conf").write_text("ClusterName=lab\nSlurmctldHost=ctl-7  # the head node\n")
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "slurm.conf"))
    spec = registry().get("executor", "slurm")
    with pytest.raises(SerbenchError, match=message):  # refused when built, before a run starts
        spec.build(**spec.resolve({"gpus": 0, "connect_timeout": 0.5}, "-o executor"))
    assert not (tmp_path / "script.sh").exists()  # nothing was submitted


def test_a_cuda_run_without_gpus_per_task_is_refused():
    pytest.importorskip("submitit", reason="the slurm executor needs pip install 'serbench[slurm]'")
    from serbench.api.devices import worker_device
    from serbench.api.errors import SerbenchError

    assert worker_device("cpu", 0, "-o executor.gpus") == "cpu"
    assert worker_device("cpu", 1, "-o executor.gpus") == "cuda"  # never a silent fall-back to the CPU
    with pytest.raises(SerbenchError, match="executor.gpus=0: the scheduler hides the GPUs"):
        worker_device("cuda", 0, "-o executor.gpus")


@pytest.mark.e2e
def test_a_running_ray_clusters_address_passes_the_probe():
    """The reference for the refusals in test_bad_inputs_suites.py: a real Ray GCS answers the
    HTTP/2 handshake, and ray.init in the probing child connects to it."""
    ray = pytest.importorskip("ray", reason="the ray executor needs pip install 'serbench[ray]'")
    from serbench_plugins.executors.ray_cluster import RayExecutor, probe

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        address = ray.get_runtime_context().gcs_address
        assert probe(address, 30) == ""
        RayExecutor(address, 1.0, 0.0, 0, 0, connect_timeout=60)._check_reachable()  # raises if it cannot connect
    finally:
        ray.shutdown()
