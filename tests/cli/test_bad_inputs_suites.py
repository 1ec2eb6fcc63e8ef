"""Issue 22's bad inputs for suites and executors, in the pattern of tests/cli/test_bad_inputs.py:
each case runs the command as a user types it and must exit 2 with one line naming the culprit
(the file and line, or the option), run no command, and change nothing outside the output
directory. A suite is data people share: it sets no executor option, names plugins (never
paths or URLs), and is checked whole (schema, types, grid size) before a cell is expanded."""

from __future__ import annotations

import re
import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from test_bad_inputs import _snapshot, refused_in_one_line

from serbench.cli.main import main
from serbench.run import suites

CELL = 'protocols = ["synthetic"]\nupstreams = ["fbank"]\ndownstreams = ["superb"]\n'
HEAD = 'name = "s"\nversion = "1"\n'
SLURM_HERE = ["--executor", "slurm", "-o", "executor.cluster=local", "-o", "executor.gpus=0", "-o", "executor.cpus=1"]
PWNED = "pwned"  # a file a hostile suite's shell line would create beside the given files


def _bench(text: str | bytes, *options: str) -> Callable[[Path], list[str]]:
    """``serbench bench s.toml`` on a suite whose text ``text`` may name ``{pwned}``, a path
    outside the output directory."""
    def make(root: Path) -> list[str]:
        data = text if isinstance(text, bytes) else text.replace("{pwned}", str(root / PWNED)).encode()
        (root / "s.toml").write_bytes(data)
        return ["bench", str(root / "s.toml"), *(o.replace("{pwned}", str(root / PWNED)) for o in options)]
    return make


def _matrix(body: str, head: str = HEAD) -> str:
    return f"{head}\n[[matrix]]\n{body}"


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    # nothing executes from data: executor settings come from the command line only
    "suite sets a Slurm setup line": (
        _bench(_matrix(CELL + 'overrides = ["executor.setup=touch {pwned}"]\n'), *SLURM_HERE),
        r"s\.toml:4: overrides: 'executor\.setup': executor settings .* come only from the command line"),
    "suite sets the Ray address": (
        _bench(_matrix(CELL + 'overrides = ["executor.address=10.0.0.1:6379"]\n'), "--executor", "ray"),
        r"s\.toml:4: overrides: 'executor\.address': executor settings"),
    "suite has an [executor] table": (
        _bench(_matrix(CELL) + '\n[executor]\nsetup = "touch {pwned}"\n', *SLURM_HERE),
        r"s\.toml:9: key 'executor': executor settings .* never from a suite file"),
    "suite entry names an executor": (
        _bench(_matrix(CELL + 'executor = "slurm"\n')), r"s\.toml:4: key 'executor': executor settings"),
    "suite fetches a checkpoint URL": (
        _bench(_matrix(CELL + 'overrides = ["upstream.path_or_url=https://example.org/x.ckpt"]\n')),
        r"s\.toml:4: overrides: upstream\.path_or_url is a URL; a suite fetches nothing"),
    "suite names a model directory": (
        _bench(_matrix(CELL.replace('"fbank"', '"hf:/home/someone/model"'))),
        r"s\.toml:4: upstreams: 'hf:/home/someone/model' names a path"),
    "suite names a URL as a plugin": (
        _bench(_matrix(CELL.replace('"fbank"', '"hf:https://evil/m"'))), r"s\.toml:4: upstreams: .* is a URL"),
    # schema: unknown keys with the nearest valid one, types checked, before any cell
    "misspelt entry key": (_bench(_matrix(CELL.replace("downstreams", "downstream"))),
                           r"s\.toml:4: unknown key 'downstream' \(did you mean 'downstreams'\?\)"),
    "misspelt top-level key": (_bench(_matrix(CELL, HEAD + "seed = [0]\n")),
                               r"s\.toml:3: unknown key 'seed' \(did you mean 'seeds'\?\)"),
    "boolean seeds": (_bench(_matrix(CELL, HEAD + "seeds = [true, false]\n")),
                      r"s\.toml:3: seeds: True \(bool\) is not an integer"),
    "string seed in an entry": (_bench(_matrix(CELL + 'seeds = ["0"]\n')), r"s\.toml:4: seeds: '0' \(str\) is not an integer"),
    "float seed": (_bench(_matrix(CELL + "seeds = [1.0]\n")), r"s\.toml:4: seeds: 1\.0 \(float\) is not an integer"),
    "negative seed": (_bench(_matrix(CELL + "seeds = [-1]\n")), r"s\.toml:4: seeds: -1 is out of range"),
    "seed given twice": (_bench(_matrix(CELL + "seeds = [3, 3]\n")), r"s\.toml:4: seeds: seed 3 is given twice"),
    "seeds not a list": (_bench(_matrix(CELL, HEAD + "seeds = 3\n")), r"s\.toml:3: seeds must be a non-empty list"),
    "pooling not a name": (_bench(_matrix(CELL + "pooling = 3\n")), r"s\.toml:4: pooling: expected a name .*\(int\)"),
    "misspelt recipe": (_bench(_matrix(CELL + 'recipe = "papr"\n')), r"s\.toml:4: recipe 'papr': expected one of paper, shared"),
    "name with a newline": (_bench(_matrix(CELL.replace('"superb"', '"superb\\nrm -rf x"'))),
                            r"s\.toml:4: downstreams: 'superb\\nrm -rf x' is not a plugin name"),
    "name given twice": (_bench(_matrix(CELL.replace('["superb"]', '["superb", "superb"]'))),
                         r"s\.toml:4: downstreams: 'superb' is named twice"),
    "empty list": (_bench(_matrix(CELL.replace('["fbank"]', "[]"))), r"s\.toml:4: upstreams must be a non-empty list"),
    "override without =": (_bench(_matrix(CELL + 'overrides = ["train.lr"]\n')),
                           r"s\.toml:4: overrides: 'train\.lr' is not \"section\.key=value\""),
    "entry not a table": (_bench(HEAD + "matrix = [1]\n"), r"s\.toml:3: a \[\[matrix\]\] entry must be a table"),
    "version with a newline": (_bench(_matrix(CELL, 'name = "s"\nversion = "1\\n# injected"\n')),
                               r"s\.toml:2: version must be 1 to 64 printable characters"),
    "suite not UTF-8": (_bench(_matrix(CELL).encode().replace(b"fbank", b"fb\xe9nk")), r"s\.toml: not UTF-8 text \(byte 0xe9"),
    "suite not TOML": (_bench(HEAD + "[[matrix]\n"), r"s\.toml: not valid TOML"),
    "a cell's override names the suite's key": (
        _bench(_matrix(CELL + 'overrides = ["train.max_epoch=1"]\n')),
        r"s\.toml:4: synthetic / fbank / superb .*: overrides: train\.max_epoch: unknown parameter \(did you mean "
        r"'train\.max_epochs'\?\)"),
    "a corpus without a saved location": (
        _bench(_matrix(CELL.replace('"synthetic"', '"iemocap_5fold"'))),
        r"s\.toml:4: iemocap_5fold / fbank / superb: protocol iemocap_5fold needs the iemocap corpus and no location "
        r"is saved: serbench config set data\.iemocap PATH, or set SERBENCH_DATA_IEMOCAP$"),  # bench has no --data
    # the grid is counted from the lists' lengths, never expanded first
    "100x100x100 grid": (
        _bench(_matrix("protocols = [{0}]\nupstreams = [{0}]\ndownstreams = [{0}]\n".format(
            ", ".join(f'"p{k}"' for k in range(100))))),
        rf"s\.toml: 1000000 cells, above the limit of {suites.MAX_CELLS} runs per suite \(line 4: 100 protocols x 100 "
        r"upstreams x 100 downstreams\)"),
    "suite file too large": (_bench(_matrix(CELL) + "#" * suites.MAX_BYTES + "\n"),
                             rf"s\.toml: {len(_matrix(CELL)) + suites.MAX_BYTES + 1} bytes, above the limit of "
                             rf"{suites.MAX_BYTES} for a suite file"),
    "too many seeds": (_bench(_matrix(CELL + f"seeds = {list(range(suites.MAX_SEEDS + 1))}\n")),
                       rf"s\.toml:4: seeds: {suites.MAX_SEEDS + 1} seeds, above the limit of {suites.MAX_SEEDS}"),
    # the command line's executor options: the error names the option, not the suite
    "bench option the executor lacks": (_bench(_matrix(CELL), "-o", "executor.setup=touch {pwned}"),
                                        r"^serbench: error: -o executor\.setup: unknown parameter.*; valid keys: executor\.workers, executor\.threads$"),
    "bench unknown executor": (_bench(_matrix(CELL), "--executor", "slurmm"),
                               r"^serbench: error: --executor slurmm: unknown executor 'slurmm' \(did you mean 'slurm'\?\)"),
    "partition that would reach the script": (
        _bench(_matrix(CELL), *SLURM_HERE, "-o", "executor.partition=gpu\ntouch x"),
        r"-o executor\.partition='gpu\\ntouch x': not a Slurm name"),
    "account with a shell character": (_bench(_matrix(CELL), *SLURM_HERE, "-o", "executor.account=lab;id"),
                                       r"-o executor\.account='lab;id': not a Slurm name"),
    "setup with a newline": (_bench(_matrix(CELL), *SLURM_HERE, "-o", "executor.setup=module load x\ntouch y"),
                             r"-o executor\.setup: holds a newline .*separate its shell lines with ';'"),
    "gpus below -1": (_bench(_matrix(CELL), "--executor", "slurm", "-o", "executor.gpus=-2"),
                      r"-o executor\.gpus: -2 is out of range \(must be >= -1\)"),
    "zero connect timeout": (_bench(_matrix(CELL), "--executor", "ray", "-o", "executor.connect_timeout=0"),
                             r"-o executor\.connect_timeout: 0\.0 is out of range \(must be > 0\)"),
    "zero Ray CPUs": (_bench(_matrix(CELL), "--executor", "ray", "-o", "executor.num_cpus=0"),
                      r"-o executor\.num_cpus: 0\.0 is out of range \(must be > 0\)"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_suite_or_executor_option_gets_one_line_exit_2_and_runs_nothing(case, tmp_path, capsys):
    make, message = CASES[case]
    given = tmp_path / "given"
    given.mkdir()
    argv = make(given)
    out = tmp_path / "out"
    argv += ["--out", str(out / "runs"), "--leaderboard", str(out / "board.md")]
    before = _snapshot(tmp_path)
    refused_in_one_line(argv, message, capsys, case)
    assert not (given / PWNED).exists()  # no shell line from the suite ran
    assert _snapshot(tmp_path) == before  # nothing given changed, nothing written, not even the output folder
    assert not out.exists()


@pytest.mark.e2e
def test_the_same_setup_from_the_command_line_does_run(tmp_path):
    """The control for the hostile suite above: the setup line it carried runs when the user gives
    it (submitit's local executor runs it in a shell before the task), so only the refusal kept
    the suite's from running."""
    pytest.importorskip("submitit", reason="the slurm executor needs pip install 'serbench[slurm]'")
    from serbench.api.work import Job, WorkUnit
    from serbench.run.execute import work_unit
    from serbench.run.registry import registry

    spec = registry().get("executor", "slurm")
    marker = tmp_path / "ran"
    executor = spec.build(**spec.resolve({"cluster": "local", "gpus": 0, "cpus": 1,
                                          "setup": f"touch {marker}"}, "-o executor"))
    (job,) = executor.submit(tmp_path / "not-a-run", [WorkUnit(str(tmp_path / "not-a-run"), Job("1", 0), "cpu", work_unit)], "cpu")
    assert job.exception() is not None  # the task itself fails: there is no run directory
    assert marker.exists()


def test_a_suite_at_the_limit_is_accepted_and_the_schema_keeps_the_shipped_suites(tmp_path):
    """MAX_CELLS cells pass the count (they fail later, on their made-up names, at plan time);
    the shipped suites pass the schema unchanged."""
    names = ", ".join(f'"p{k}"' for k in range(10))
    path = tmp_path / "s.toml"
    path.write_text(_matrix(f"protocols = [{names}]\nupstreams = [{names}]\ndownstreams = [{names}]\n"))
    assert suites.MAX_CELLS == 1000 and len(suites.load(path).cells) == 10 * 10 * 10
    root = Path(__file__).resolve().parents[2] / "benchmarks"
    assert [len(suites.load(root / f"{n}.toml").cells) for n in ("smoke", "seed-papers")] == [5, 4]


def _silent_server(greeting: bytes = b"") -> tuple[socket.socket, threading.Event]:
    """A TCP server that accepts, sends ``greeting`` and then says nothing more (a firewall's
    black hole, an intercepting proxy, a service that is not Ray)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    done = threading.Event()

    def serve():
        server.settimeout(0.2)
        held = []
        while not done.is_set():
            try:
                conn = server.accept()[0]
            except OSError:
                continue
            held.append(conn)
            if greeting:
                conn.sendall(greeting)
        for conn in held:
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server, done


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("where", ["option", "environment"])
def test_an_unreachable_ray_address_is_refused_naming_it(where, tmp_path, capsys, monkeypatch):
    """Ray's own connect retries for many minutes; serbench refuses at once (connection refused)
    naming the address and where it came from; nothing is written outside --out."""
    pytest.importorskip("ray", reason="the ray executor needs pip install 'serbench[ray]'")
    from test_bad_inputs import SYNTHETIC

    address = f"127.0.0.1:{_closed_port()}"
    option = ["-o", f"executor.address={address}"] if where == "option" else []
    if where == "environment":
        monkeypatch.setenv("RAY_ADDRESS", address)
    (tmp_path / "given").mkdir()
    before = _snapshot(tmp_path / "given")
    code = main([*SYNTHETIC, "--quiet", "--device", "cpu", "--executor", "ray", *option, "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    named = "-o executor.address" if where == "option" else "RAY_ADDRESS"
    assert f"{named}={address}: no Ray cluster reachable: Connection refused" in err[0], err[0]
    assert _snapshot(tmp_path / "given") == before


def test_a_ray_address_that_never_answers_times_out_at_the_bound():
    """A server that accepts and stays silent: the probe gives up after connect_timeout (the test
    ends, however slow the machine, because the bound is the executor's, not the test's)."""
    from serbench.api.errors import SerbenchError
    from serbench_plugins.executors.ray_cluster import RayExecutor, probe

    server, done = _silent_server()
    try:
        address = "127.0.0.1:%d" % server.getsockname()[1]
        assert probe(address, 0.5) == "no answer within 0.5 s"
        executor = RayExecutor(address, 1.0, 0.0, 0, 0, connect_timeout=0.5)
        with pytest.raises(SerbenchError, match=re.escape(f"-o executor.address={address}: no Ray cluster reachable: "
                                                      "no answer within 0.5 s")):
            executor._check_reachable()
    finally:
        done.set()
        server.close()


def test_an_http2_server_that_is_not_ray_is_refused_at_the_bound():
    """An HTTP/2 peer that is not a Ray cluster (an intercepting proxy answers the handshake):
    the handshake passes, ray.init in the child keeps retrying, and is stopped at connect_timeout."""
    pytest.importorskip("ray", reason="the ray executor needs pip install 'serbench[ray]'")
    from serbench.api.errors import SerbenchError
    from serbench_plugins.executors.ray_cluster import RayExecutor, probe

    settings = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # an empty SETTINGS frame, as a gRPC server's first
    server, done = _silent_server(settings)
    try:
        address = "127.0.0.1:%d" % server.getsockname()[1]
        assert probe(address, 5) == ""
        with pytest.raises(SerbenchError, match=re.escape(f"-o executor.address={address}: no Ray cluster answered "
                                                          "within 5 s")):
            RayExecutor(address, 1.0, 0.0, 0, 0, connect_timeout=5)._check_reachable()
    finally:
        done.set()
        server.close()


@pytest.mark.parametrize("scontrol, message", [
    (None, r"--executor slurm: no sbatch on PATH \(not a Slurm login node\?\)"),
    (f"#!/bin/sh\nexec {shutil.which('sleep')} 30\n", r"--executor slurm: the Slurm controller \(see scontrol ping\) did not answer scontrol "
                                   r"ping within 0\.5 s \(-o executor\.connect_timeout\)"),
])
def test_bench_on_slurm_without_a_reachable_controller_is_refused_before_any_cell(scontrol, message, tmp_path, capsys,
                                                                                 monkeypatch):
    """No sbatch, or a controller that never answers: refused when the executor is built, before
    the suite's first cell, so nothing is written."""
    pytest.importorskip("submitit", reason="the slurm executor needs pip install 'serbench[slurm]'")
    tools = tmp_path / "bin"
    tools.mkdir()
    if scontrol is not None:
        for name, text in (("sbatch", "#!/bin/sh\nexit 1\n"), ("srun", "#!/bin/sh\nexit 0\n"), ("scontrol", scontrol)):
            (tools / name).write_text(text)
            (tools / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(tools))
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "no-slurm.conf"))
    argv = _bench(_matrix(CELL), "--executor", "slurm", "-o", "executor.connect_timeout=0.5")(tmp_path)
    before = _snapshot(tmp_path)
    code = main([*argv, "--out", str(tmp_path / "out"), "--leaderboard", str(tmp_path / "board.md")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert re.search(message, err[0]), err[0]
    assert _snapshot(tmp_path) == before and not (tmp_path / "out").exists()
