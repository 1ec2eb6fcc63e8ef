"""Issue 22's bad-input table for what a run leaves on disk and reads back: job files,
``predictions.csv``, ``config.json``, claims and fusion output. Each case damages a copy of a
finished run as a careless (or hostile) hand would, runs the command as a user types it, and
must end in exit 2 with one line naming the damaged file, or in a correct result; no file
outside the run directory changes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_bad_inputs import _snapshot

from serbench.api.work import Job
from serbench.cli.main import main
from serbench.report.rundir import RunDir

RUN = ["run", "--upstream", "fbank", "--downstream", "superb", "--protocol", "synthetic", "--quiet",
       "-o", "protocol.per_class=1", "-o", "train.max_epochs=1"]
OTHER = ["-o", "train.lr=0.003"]  # a second system on the same task, for compare and fuse


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """Two finished runs of the synthetic task (5 folds, seed 0), made once for the table."""
    root = tmp_path_factory.mktemp("finished")
    assert main([*RUN, "--out", str(root / "a")]) == 0
    assert main([*RUN, *OTHER, "--out", str(root / "b")]) == 0
    (a,), (b,) = (list((root / x).iterdir()) for x in "ab")
    return a, b


def _job(run: Path, suffix: str = ".csv", fold: str = "1") -> Path:
    return run / "folds" / f"fold-{fold}_seed-0{suffix}"


def _flip_a_prediction(path: Path) -> None:
    """One test prediction changed to another class: the file still parses, has its rows."""
    lines = path.read_text().splitlines(keepends=True)
    fields = lines[1].split(",")
    classes = sorted({line.split(",")[4] for line in lines[1:]})
    fields[5] = next(c for c in classes if c != fields[5])
    lines[1] = ",".join(fields)
    path.write_text("".join(lines))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _raise_score(path: Path) -> None:
    record = json.loads(path.read_text())
    record["metrics"]["ua"] = 0.99
    path.write_text(json.dumps(record, indent=2))


def _config(edit: Callable[[dict], object]) -> Callable[[Path], None]:
    def change(path: Path) -> None:
        config = json.loads(path.read_text())
        path.write_text(json.dumps(edit(config) or config, indent=2))
    return change


Damage = Callable[[Path], None]
# name: (run (0: a, 1: b), file in it, damage, command given the two run dirs, expected message)
CASES: dict[str, tuple[int, Callable[[Path], Path], Damage, Callable[[Path, Path], list[str]], str]] = {
    # a job's predictions: refused by finish (the next run computes the job again: below)
    "finish: edited fold predictions": (0, _job, _flip_a_prediction, lambda a, b: ["finish", str(a)],
                                        r"fold-1_seed-0\.csv: edited since its job wrote it \(its sha256 differs"),
    "finish: truncated fold predictions": (0, _job, _truncate, lambda a, b: ["finish", str(a)],
                                           r"fold-1_seed-0\.csv: edited since its job wrote it"),
    "finish: edited dev predictions": (0, lambda r: _job(r, ".dev.csv"), _flip_a_prediction,
                                       lambda a, b: ["finish", str(a)], r"fold-1_seed-0\.dev\.csv: edited since"),
    "finish: edited job record": (0, lambda r: _job(r, ".json"), _raise_score, lambda a, b: ["finish", str(a)],
                                  r"fold-1_seed-0\.json: edited since its job wrote it \(its checksum differs\)"),
    "finish: job record not JSON": (0, lambda r: _job(r, ".json"), lambda p: p.write_bytes(b"\x00\xff garbage"),
                                    lambda a, b: ["finish", str(a)], r"fold-1_seed-0\.json: not a job record"),
    "finish: job record a list": (0, lambda r: _job(r, ".json"), lambda p: p.write_text("[1, 2]"),
                                  lambda a, b: ["finish", str(a)], r"fold-1_seed-0\.json: not a job record with checksums"),
    "plot: edited job record": (0, lambda r: _job(r, ".json"), _raise_score, lambda a, b: ["plot", str(a)],
                                r"fold-1_seed-0\.json: edited since its job wrote it"),
    "fuse: edited dev predictions": (1, lambda r: _job(r, ".dev.csv", "3"), _flip_a_prediction,
                                     lambda a, b: ["fuse", str(a), str(b), "--out", str(a.parent / "fused")],
                                     r"fold-3_seed-0\.dev\.csv: edited since its job wrote it"),
    # the run's predictions.csv: refused by what reads it
    "compare: edited predictions.csv": (1, lambda r: r / "predictions.csv", _flip_a_prediction,
                                        lambda a, b: ["compare", str(a), str(b), "--json", str(a.parent / "c.json")],
                                        r"b/[^/]+/predictions\.csv: edited since serbench wrote it \(its sha256 differs"),
    "compare: truncated predictions.csv": (0, lambda r: r / "predictions.csv", _truncate,
                                           lambda a, b: ["compare", str(a), str(b), "--json", str(a.parent / "c.json")],
                                           r"a/[^/]+/predictions\.csv: edited since serbench wrote it"),
    "score: edited predictions.csv of a run": (0, lambda r: r / "predictions.csv", _flip_a_prediction,
                                               lambda a, b: ["score", str(a / "predictions.csv")],
                                               r"predictions\.csv: edited since its run wrote it"),
    # config.json: refused, never ignored and written over
    "finish: edited config.json": (0, lambda r: r / "config.json", _config(lambda c: c["train"].update(lr=0.5)),
                                   lambda a, b: ["finish", str(a)],
                                   r"config\.json: train\.lr differ from what the run resolves to"),
    "run again: edited config.json": (0, lambda r: r / "config.json",
                                      _config(lambda c: c["upstream"]["params"].update(n_mels=12)),
                                      lambda a, b: [*RUN, "--out", str(a.parent)],
                                      r"config\.json: upstream\.params\.n_mels differ from what the run resolves to"),
    "job: config.json a list": (0, lambda r: r / "config.json", lambda p: p.write_text("[]"),
                                lambda a, b: ["job", str(a)], r"config\.json: a JSON list, expected an object"),
    "job: config.json without seeds": (0, lambda r: r / "config.json", _config(lambda c: c.update(seeds="0")),
                                       lambda a, b: ["job", str(a)], r"config\.json: seeds is not a list of integers"),
    "finish: config.json not JSON": (0, lambda r: r / "config.json", lambda p: p.write_text("{oops"),
                                     lambda a, b: ["finish", str(a)], r"config\.json:1: not valid JSON"),
    # jobs.json, which status reads
    "status: jobs.json of the wrong shape": (0, lambda r: r / "jobs.json", lambda p: p.write_text('[{"fold": 1}]'),
                                             lambda a, b: ["status", str(a)], r"jobs\.json: not a list of"),
    "status: jobs.json binary": (0, lambda r: r / "jobs.json", lambda p: p.write_bytes(b"\xff\xfe\x00"),
                                 lambda a, b: ["status", str(a)], r"jobs\.json:1: byte 0xff is not UTF-8"),
}


def _copy(finished: tuple[Path, Path], root: Path) -> tuple[Path, Path]:
    runs = []
    for source, name in zip(finished, "ab"):
        target = root / name / source.name
        shutil.copytree(source, target)
        runs.append(target)
    return runs[0], runs[1]


@pytest.mark.parametrize("case", CASES)
def test_a_damaged_run_file_gets_one_line_exit_2_naming_it(case, finished, tmp_path, capsys):
    which, file_of, damage, command, message = CASES[case]
    a, b = _copy(finished, tmp_path)
    damage(file_of((a, b)[which]))
    before = _snapshot(tmp_path)
    capsys.readouterr()
    code = main(command(a, b))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, (case, err)
    assert len(err) == 1 and err[0].startswith("serbench: error: "), err
    assert re.search(message, err[0]), err[0]
    changed = {k for k in set(before) | set(_snapshot(tmp_path)) if before.get(k) != _snapshot(tmp_path).get(k)}
    assert all(k.endswith("run.log") for k in changed), changed  # only a run's own log gains lines


def test_an_edited_job_file_is_computed_again_by_the_next_run_with_the_same_result(finished, tmp_path):
    """`serbench run` on a run whose job files were edited (or truncated) does the job again:
    the result is the untouched run's, to the byte."""
    a, _ = _copy(finished, tmp_path)
    _flip_a_prediction(_job(a))
    _truncate(_job(a, ".json", "2"))
    assert main([*RUN, "--out", str(a.parent)]) == 0
    for name in ("predictions.csv", "folds/fold-1_seed-0.csv", "folds/fold-2_seed-0.csv"):
        assert (a / name).read_bytes() == (finished[0] / name).read_bytes(), name
    again, first = (json.loads((r / "folds" / "fold-2_seed-0.json").read_text()) for r in (a, finished[0]))
    assert {k: v for k, v in again.items() if k not in ("train_s", "sha256")} == {
        k: v for k, v in first.items() if k not in ("train_s", "sha256")}  # all but its timing


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02 binary", b"not json", b'{"host": 3, "pid": "x"}'])
def test_a_corrupt_claim_never_breaks_status_or_a_run(finished, tmp_path, capsys, content):
    """A claim file that is not a claim: status shows it stale (no traceback), and a run takes it
    over and computes the job, with the untouched run's result."""
    a, _ = _copy(finished, tmp_path)
    for suffix in (".json", ".csv", ".dev.csv"):
        _job(a, suffix).unlink()
    claim = a / "claims" / "fold-1_seed-0.claim"
    claim.parent.mkdir(exist_ok=True)
    claim.write_bytes(content)
    old = time.time() - 60
    os.utime(claim, (old, old))
    capsys.readouterr()
    assert main(["status", str(a)]) == 0
    shown = capsys.readouterr()
    assert "Traceback" not in shown.err and re.search(r"\b1\W+0\W+stale", shown.out), shown.out
    assert main([*RUN, "--out", str(a.parent)]) == 0
    assert not claim.exists()
    assert (a / "predictions.csv").read_bytes() == (finished[0] / "predictions.csv").read_bytes()
    assert "taken over (not a readable claim" in (a / "run.log").read_text()


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="process start times come from /proc")
def test_a_job_claimed_by_a_recycled_pid_is_run_not_waited_for(finished, tmp_path):
    """The claim names a live process on this host that is not its writer (a `sleep`: same pid
    as a dead owner's, another start time): the run takes the claim over at once and finishes
    with the untouched run's result, where it used to wait forever."""
    from serbench.report import claims

    a, _ = _copy(finished, tmp_path)
    for suffix in (".json", ".csv", ".dev.csv"):
        _job(a, suffix, "3").unlink()
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        owner = {**claims.owner_record(), "pid": sleeper.pid, "process_start": claims.process_start(sleeper.pid) - 1}
        claim = RunDir(a).claim(Job("3", 0))
        claim.parent.mkdir(exist_ok=True)
        claim.write_text(json.dumps(owner))
        assert main([*RUN, "--out", str(a.parent)]) == 0
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not claim.exists()
    assert (a / "predictions.csv").read_bytes() == (finished[0] / "predictions.csv").read_bytes()
    assert f"taken over (pid {sleeper.pid} is now another process" in (a / "run.log").read_text()


@pytest.mark.e2e
def test_two_concurrent_fuses_into_one_out_never_mix(finished, tmp_path):
    """Two `serbench fuse` processes into one --out: one writes the fusion, the other waits for
    its lock and is refused in one line; the output equals a fusion made alone."""
    a, b = _copy(finished, tmp_path)
    out = tmp_path / "fused"
    command = [sys.executable, "-m", "serbench", "fuse", str(a), str(b), "--out", str(out)]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    done = [(p.wait(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert sorted(code for code, _ in done) == [0, 2], done
    refused = next(err for code, err in done if code == 2).strip().splitlines()
    assert len(refused) == 1 and re.search(r"--out .*fused: already exists and is not empty", refused[0]), refused
    alone = tmp_path / "alone"
    assert main(["fuse", str(a), str(b), "--out", str(alone)]) == 0
    for name in ("predictions.csv", *(f"folds/{p.name}" for p in sorted((alone / "folds").iterdir()))):
        assert (out / name).read_bytes() == (alone / name).read_bytes(), name
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        p.name for p in alone.iterdir() if not p.name.startswith("."))
