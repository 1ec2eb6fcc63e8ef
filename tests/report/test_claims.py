"""Per-job claims: two processes on one run directory compute every job exactly once, and a
job whose owner was killed is completed by the next run with the same result."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from serbench.api.work import Job
from serbench.report import claims
from serbench.report.rundir import RunDir

RUN = ["run", "--upstream", "fbank", "--downstream", "superb", "--protocol", "synthetic", "--quiet",
       "-o", "protocol.per_class=4", "-o", "train.max_epochs=3"]


def _start(out, *extra):
    return subprocess.Popen([sys.executable, "-m", "serbench", *RUN, *extra, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _fold_metrics(run_dir):
    return {p.name: json.loads(p.read_text())["metrics"] for p in sorted((run_dir / "folds").glob("*.json"))}


def test_a_claim_is_exclusive_until_released(tmp_path):
    first = claims.take(tmp_path, "1", 0)
    assert first is not None
    assert claims.take(tmp_path, "1", 0) is None  # held by a live process: this one
    assert claims.take(tmp_path, "2", 0) is not None  # another job is free
    first.release()
    assert claims.take(tmp_path, "1", 0) is not None


def test_a_claim_whose_owner_died_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path = RunDir(tmp_path).claim(Job("1", 0))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout), "started": 0}))
    assert claims.is_stale(path)
    taken = claims.take(tmp_path, "1", 0)
    assert taken is not None and json.loads(path.read_text())["pid"] == os.getpid()


def test_another_hosts_claim_is_stale_only_after_its_lease(tmp_path):
    path = RunDir(tmp_path).claim(Job("1", 0))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"host": "elsewhere.invalid", "pid": 1, "started": 0}))
    assert not claims.is_stale(path, lease=60) and claims.take(tmp_path, "1", 0, lease=60) is None
    old = time.time() - 120
    os.utime(path, (old, old))
    assert claims.is_stale(path, lease=60) and claims.take(tmp_path, "1", 0, lease=60) is not None


def _sleeper():
    """An unrelated live process on this host (not serbench): what a recycled pid looks like."""
    return subprocess.Popen(["sleep", "600"])


def _claim_of(tmp_path, owner: dict):
    path = RunDir(tmp_path).claim(Job("1", 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(owner))
    return path


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="process start times come from /proc")
def test_a_claim_held_by_an_unrelated_live_process_is_taken_over_at_once(tmp_path, caplog):
    """A recycled pid: the pid is alive, but /proc says it started at another time than the
    claim records, so the claim is released on the first look (the README's bound: at once on
    Linux), with a log line saying why."""
    sleeper = _sleeper()
    try:
        start = claims.process_start(sleeper.pid)
        assert start is not None and os.kill(sleeper.pid, 0) is None  # alive
        path = _claim_of(tmp_path, {"host": socket.gethostname(), "pid": sleeper.pid, "process_start": start + 1,
                                    "started": time.time()})
        assert claims.stale_reason(path) == f"pid {sleeper.pid} is now another process (it started at another time)"
        with caplog.at_level("INFO", logger="serbench"):
            taken = claims.take(tmp_path, "1", 0)
        assert taken is not None and json.loads(path.read_text())["pid"] == os.getpid()
        assert any("taken over (pid" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)
        # the same live process with its true start time holds the claim, however old the file
        path.write_text(json.dumps({"host": socket.gethostname(), "pid": sleeper.pid, "process_start": start}))
        os.utime(path, (0, 0))
        assert not claims.is_stale(path) and claims.take(tmp_path, "1", 0) is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_live_foreign_pid_without_a_start_time_holds_a_claim_for_one_lease_only(tmp_path):
    """Where the start time cannot be compared (a claim without one, or no /proc) the heartbeat
    lease is the bound: an untouched claim is released after LEASE seconds, not never."""
    sleeper = _sleeper()
    try:
        path = _claim_of(tmp_path, {"host": socket.gethostname(), "pid": sleeper.pid, "started": 0})
        assert not claims.is_stale(path, lease=60) and claims.take(tmp_path, "1", 0, lease=60) is None
        old = time.time() - 61
        os.utime(path, (old, old))
        assert claims.stale_reason(path, lease=60).startswith(f"its owner {socket.gethostname()}:{sleeper.pid} has not "
                                                              "touched it for 61 s")
        assert claims.take(tmp_path, "1", 0, lease=60) is not None
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("content", [b"", b"garbage", b"\x00\xff\xfe\x80binary", b"[1, 2]", b"null",
                                     b'{"host": "vm", "pid": "12"}', b'{"pid": 99999999999999999999999}'])
def test_a_corrupt_claim_is_stale_after_its_grace(tmp_path, content):
    """Garbage, empty, binary or wrongly typed: never a traceback; held only for the GRACE
    seconds a claim takes to be written, then taken over."""
    path = RunDir(tmp_path).claim(Job("1", 0))
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    assert claims.read_owner(path) is None and not claims.is_stale(path)
    old = time.time() - claims.GRACE - 1
    os.utime(path, (old, old))
    assert claims.stale_reason(path).startswith("not a readable claim")
    assert claims.take(tmp_path, "1", 0) is not None and claims.read_owner(path)["pid"] == os.getpid()


def test_a_released_claim_that_was_taken_over_is_left_to_its_new_owner(tmp_path):
    mine = claims.take(tmp_path, "1", 0)
    mine.path.write_text(json.dumps({"host": "elsewhere.invalid", "pid": 1, "started": 0}))  # taken over meanwhile
    mine.release()
    assert claims.read_owner(mine.path)["host"] == "elsewhere.invalid"


def test_the_heartbeat_keeps_a_claim_fresh(tmp_path):
    claim = claims.take(tmp_path, "1", 0)
    old = time.time() - 1000
    os.utime(claim.path, (old, old))
    claim.heartbeat = 0.05
    with claim:
        deadline = time.time() + 60
        while claim.path.stat().st_mtime < old + 500 and time.time() < deadline:
            time.sleep(0.05)
        assert claim.path.stat().st_mtime > old + 500
    assert not claim.path.exists()  # released at the end


@pytest.mark.e2e
def test_two_processes_on_one_run_compute_every_job_once(tmp_path):
    a, b = _start(tmp_path), _start(tmp_path)
    for process in (a, b):
        _, err = process.communicate()
        assert process.returncode == 0, err
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    computed = re.findall(r"fold (\S+) seed 0: ua", (run_dir / "run.log").read_text())
    assert sorted(computed) == ["1", "2", "3", "4", "5"]  # each fold once, between the two processes
    assert (run_dir / "result.json").exists() and not list((run_dir / "claims").glob("*.claim"))


@pytest.mark.e2e
def test_a_job_killed_midway_is_completed_by_the_next_run_with_the_same_result(tmp_path):
    killed = _start(tmp_path / "killed")
    claim = None
    while killed.poll() is None:  # wait until fold 2 is being computed
        claim = next((tmp_path / "killed").glob("*/claims/fold-2_seed-0.claim"), None)
        if claim is not None:
            break
        time.sleep(0.05)
    assert claim is not None, "fold 2 was never claimed"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    run_dir = claim.parent.parent
    assert claim.exists() and not (run_dir / "result.json").exists()  # the dead owner's claim is left behind
    again = _start(tmp_path / "killed")
    _, err = again.communicate()
    assert again.returncode == 0, err
    whole = _start(tmp_path / "whole")
    _, err = whole.communicate()
    assert whole.returncode == 0, err
    (whole_dir,) = list((tmp_path / "whole").iterdir())
    assert whole_dir.name == run_dir.name
    assert _fold_metrics(run_dir) == _fold_metrics(whole_dir)
    result = json.loads((run_dir / "result.json").read_text())["summary"]
    assert result == json.loads((whole_dir / "result.json").read_text())["summary"]


@pytest.mark.e2e
def test_status_shows_done_running_stale_and_pending(tmp_path):
    from conftest import run_cli

    done = run_cli(*RUN[:-4], "-o", "protocol.per_class=1", "-o", "train.max_epochs=1", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    (run_dir,) = list(tmp_path.iterdir())
    for fold in ("1", "2"):
        (run_dir / "folds" / f"fold-{fold}_seed-0.json").unlink()
    live = claims.take(run_dir, "1", 0)
    stale = RunDir(run_dir).claim(Job("2", 0))
    stale.write_text(json.dumps({"host": "elsewhere.invalid", "pid": 1, "started": 0}))
    os.utime(stale, (0, 0))
    shown = run_cli("status", str(run_dir))
    assert shown.returncode == 0, shown.stderr
    lines = {line.split()[1]: line for line in shown.stdout.splitlines() if re.match(r"^\W*\d \W+0 ", line)}
    assert "running" in lines["1"] and f"{socket.gethostname()}:{os.getpid()}" in lines["1"]
    assert "stale" in lines["2"] and "elsewhere.invalid:1" in lines["2"]
    assert all("done" in lines[f] for f in ("3", "4", "5"))
    assert "3 done, 1 running, 1 stale" in shown.stdout
    live.release()
    missing = run_cli("status", str(tmp_path))
    assert missing.returncode != 0 and "jobs.json: not found" in missing.stderr


@pytest.mark.e2e
def test_job_and_finish_run_a_run_directory_by_hand(tmp_path):
    from conftest import run_cli

    small = [*RUN[:-4], "-o", "protocol.per_class=1", "-o", "train.max_epochs=1"]
    assert run_cli(*small, "--out", str(tmp_path)).returncode == 0
    (run_dir,) = list(tmp_path.iterdir())
    before = _fold_metrics(run_dir)
    summary = json.loads((run_dir / "result.json").read_text())["summary"]
    for fold in ("2", "4"):
        (run_dir / "folds" / f"fold-{fold}_seed-0.json").unlink()
    (run_dir / "result.json").unlink()
    refused = run_cli("finish", str(run_dir))
    assert refused.returncode != 0 and "2 of 5 jobs not done (first: fold 2 seed 0)" in refused.stderr
    bad = run_cli("job", str(run_dir), "--fold", "9", "--seed", "0")
    assert bad.returncode != 0 and "no job fold 9 seed 0" in bad.stderr
    for fold in ("2", "4"):
        done = run_cli("job", str(run_dir), "--fold", fold, "--seed", "0", "--quiet", "--device", "cpu")
        assert done.returncode == 0, done.stderr
    assert _fold_metrics(run_dir) == before  # the same jobs, recomputed by hand
    finished = run_cli("finish", str(run_dir))
    assert finished.returncode == 0, finished.stderr
    assert json.loads((run_dir / "result.json").read_text())["summary"] == summary


def test_a_run_directory_whose_config_resolves_otherwise_is_refused(tmp_path):
    from serbench.api.errors import SerbenchError
    from serbench.run.plan import load_plan, plan
    from serbench.run.request import RunRequest

    the_plan = plan(RunRequest("fbank", "superb", None, None, "synthetic", None, (0,), "cpu", ["train.max_epochs=1"]))
    run_dir = tmp_path / the_plan.run_id
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps(the_plan.config))
    assert load_plan(run_dir, "cpu").config == the_plan.config
    edited = {**the_plan.config, "overrides": {"train": {"max_epochs": 2}}}
    (run_dir / "config.json").write_text(json.dumps(edited))
    with pytest.raises(SerbenchError, match=r"now resolves to run .* \(changed: train\)"):
        load_plan(run_dir, "cpu")
    with pytest.raises(SerbenchError, match="no config.json"):
        load_plan(tmp_path, "cpu")


def _wait_for(process, condition, poll=0.01):
    """Poll until ``condition()`` or the process ends (no wall-clock limit: a slow box waits)."""
    while process.poll() is None:
        if condition():
            return True
        time.sleep(poll)
    return False


@pytest.mark.e2e
def test_a_kill_during_feature_extraction_then_a_rerun_gives_the_identical_result(tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "SERBENCH_CACHE": str(cache)}
    extra = ["-o", "protocol.per_class=8", "-o", "train.max_epochs=1"]
    start = lambda out: subprocess.Popen([sys.executable, "-m", "serbench", *RUN, *extra, "--out", str(out)],  # noqa: E731
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    killed = start(tmp_path / "killed")
    entries = lambda: list((cache / "features").glob("*/*/*.npy"))  # noqa: E731
    assert _wait_for(killed, lambda: len(entries()) >= 5), "extraction was never seen under way"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    (run_dir,) = list((tmp_path / "killed").iterdir())
    assert not list((run_dir / "folds").glob("*.json")) if (run_dir / "folds").exists() else True  # no job had run
    again = start(tmp_path / "killed")
    _, err = again.communicate()
    assert again.returncode == 0, err
    env["SERBENCH_CACHE"] = str(tmp_path / "fresh-cache")  # the reference extracts everything itself
    whole = start(tmp_path / "whole")
    _, err = whole.communicate()
    assert whole.returncode == 0, err
    (whole_dir,) = list((tmp_path / "whole").iterdir())
    assert _fold_metrics(run_dir) == _fold_metrics(whole_dir)
    summary = lambda d: json.loads((d / "result.json").read_text())["summary"]  # noqa: E731
    assert summary(run_dir) == summary(whole_dir)


@pytest.mark.e2e
def test_kills_at_any_point_of_the_summary_then_a_rerun_give_the_identical_result(tmp_path):
    """``serbench finish`` rebuilds a run's summary from its job files; killed at spread-out
    moments of its run (start-up, reading, computing, writing), the next one writes the same."""
    done = subprocess.run([sys.executable, "-m", "serbench", *RUN, "--out", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (run_dir,) = list(tmp_path.iterdir())
    reference = {name: (run_dir / name).read_bytes() for name in ("predictions.csv",)}
    summary = json.loads((run_dir / "result.json").read_text())["summary"]
    finish = [sys.executable, "-m", "serbench", "finish", str(run_dir)]
    (run_dir / "result.json").unlink()
    began = time.perf_counter()
    assert subprocess.run(finish, capture_output=True).returncode == 0
    took = time.perf_counter() - began
    for k in range(1, 5):
        (run_dir / "result.json").unlink(missing_ok=True)
        process = subprocess.Popen(finish, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(took * (k / 5 + 0.1 * (k == 4)))  # the last kill lands in the final tenth: the writes
        process.send_signal(signal.SIGKILL)
        process.wait()
        if (run_dir / "result.json").exists():  # a kill after the write: the file is whole
            assert json.loads((run_dir / "result.json").read_text())["summary"] == summary
    rerun = subprocess.run(finish, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads((run_dir / "result.json").read_text())["summary"] == summary
    assert all((run_dir / name).read_bytes() == data for name, data in reference.items())
    # a kill inside a write can leave only a hidden temporary beside the file, never a partial file
    assert all(p.name.startswith(".") for p in run_dir.rglob("*.tmp"))
