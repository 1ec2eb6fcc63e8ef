"""Benchmark suites: expansion, refusal of bad files with their line, running and resuming."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from serbench.api.errors import SerbenchError
from serbench.run import suites

from conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
TINY = """name = "tiny"
version = "1"
seeds = [0]

[[matrix]]
protocols = ["synthetic"]
upstreams = ["fbank"]
downstreams = ["superb"]
overrides = ["protocol.per_class=1", "train.max_epochs=1"]

[[matrix]]
protocols = ["synthetic"]
upstreams = ["fbank"]
downstreams = ["superb"]
pooling = "std"
overrides = ["protocol.per_class=1", "train.max_epochs=1"]
"""


def _suite(tmp_path, text):
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["smoke", "seed-papers"])
def test_shipped_suites_expand(name):
    suite = suites.load(ROOT / "benchmarks" / f"{name}.toml")
    assert suite.name == name and suite.cells
    if name == "smoke":
        assert {c.downstream for c in suite.cells} == {"superb", "sap_gap", "wap_la", "wavlm_cond", "gmp_atl"}
        assert all(c.seeds == (0, 1, 2) and c.protocol == "synthetic" for c in suite.cells)
        assert len(suites.plans(suite)) == 5  # every cell resolves here (no corpus or weights needed)


@pytest.mark.parametrize("text, message", [
    (TINY.replace('downstreams = ["superb"]\npooling', 'downstreams = ["superbb"]\npooling'),
     r"suite.toml:11: synthetic / fbank / superbb \(pooling std, .*unknown downstream 'superbb'"),
    (TINY.replace('pooling = "std"\n', ""), r"suite.toml:11: cell synthetic / fbank / superb .* already in the entry at line 5"),
    (TINY.replace('"train.max_epochs=1"]\n\n', '"train.max_epoch=1"]\n\n', 1), r"suite.toml:5: .*: overrides: train.max_epoch: unknown parameter"),
    (TINY.replace("seeds = [0]", "seeds = [0]\n[[matrix]]\nprotocol = 'x'", 1), r"suite.toml:4: unknown key 'protocol'"),
])
def test_a_bad_suite_is_refused_with_its_file_and_line(tmp_path, text, message):
    path = _suite(tmp_path, text)
    with pytest.raises(SerbenchError, match=message):
        suites.plans(suites.load(path))


@pytest.mark.e2e
def test_bench_runs_every_cell_writes_the_leaderboard_and_resumes(tmp_path):
    path = _suite(tmp_path, TINY)
    board = tmp_path / "board.md"
    env = {"SERBENCH_CACHE": str(tmp_path / "cache")}
    dry = run_cli("bench", str(path), "--dry-run", "--out", str(tmp_path / "runs"), env=env)
    assert dry.returncode == 0, dry.stderr
    assert "2 cells, 10 jobs" in dry.stdout and not (tmp_path / "runs").exists()
    assert "shared with a cell above" in dry.stdout  # both cells read the same fbank features
    estimate = re.search(r"feature cache: about ([\d.]+) (kB|MB|GB)", dry.stdout)
    first = run_cli("bench", str(path), "--out", str(tmp_path / "runs"), "--leaderboard", str(board), env=env)
    assert first.returncode == 0, first.stderr
    written = sum(p.stat().st_size for p in (tmp_path / "cache" / "features").glob("*/*/*.npy"))
    scale = {"kB": 1e3, "MB": 1e6, "GB": 1e9}[estimate.group(2)]
    assert float(estimate.group(1)) * scale == pytest.approx(written, rel=0.05)  # frames and .npy headers
    text = board.read_text()
    assert "## synthetic" in text and text.count("| synthetic ") == 2 and "| std " in text
    jobs = sorted((tmp_path / "runs").glob("*/folds/*.json"))
    stamps = [p.stat().st_mtime_ns for p in jobs]
    again = run_cli("bench", str(path), "--out", str(tmp_path / "runs"), "--leaderboard", str(board), env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("nothing computed") == 2
    assert [p.stat().st_mtime_ns for p in jobs] == stamps  # the second invocation computed no job
