"""Each user mistake: non-zero exit, one line on stderr that names the fault, no traceback."""

import pytest

from serbench.cli.main import main

from conftest import run_cli

BASE = ["run", "--upstream", "fbank", "--downstream", "superb", "--protocol", "synthetic"]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["run", "--upstream", "fbnak", "--downstream", "superb", "--protocol", "synthetic"],
         "unknown upstream 'fbnak' (did you mean 'fbank'?)"),
        (["run", "--upstream", "fbank", "--downstream", "superbb", "--protocol", "synthetic"],
         "unknown downstream 'superbb' (did you mean 'superb'?)"),
        (BASE + ["--pooling", "maen"], "unknown pooling 'maen' (did you mean 'mean'?)"),
        (BASE + ["-o", "downstream.hiden=3"], "-o downstream.hiden: unknown parameter (did you mean 'downstream.hidden'?)"),
        (BASE + ["-o", "train.lr=fast"], "-o train.lr: expected float, got 'fast'"),
        (BASE + ["-o", "train.lr"], "expected section.param=value"),
        (BASE + ["--device", "tpu"], "--device 'tpu': expected auto, cpu or cuda[:N]"),
        (BASE + ["--seeds", "0,x"], "--seeds '0,x': expected comma-separated integers"),
        (["run", "--upstream", "fbank"], "the following arguments are required: --downstream"),
        (["list", "upstreamz"], "unknown plugin kind 'upstreamz' (did you mean 'upstream"),
        (["leaderboard", "no/such/result.json"], "no/such/result.json: no such result file"),
        (["config", "get", "data.nothing"], "config key 'data.nothing' is not set"),
    ],
)
def test_user_mistakes_get_one_clear_line(args, fragment, tmp_path, capsys):
    code = main([*args, "--out", str(tmp_path)] if args[0] == "run" else args)
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("serbench: error: "), err
    assert fragment in lines[0]
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.e2e
def test_a_mistake_through_the_installed_command_has_no_traceback():
    done = run_cli("run", "--upstream", "fbnak", "--downstream", "superb", "--protocol", "synthetic")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("serbench: error: unknown upstream 'fbnak' (did you mean 'fbank'?); available: ")
    available = done.stderr.split("available: ", 1)[1].strip().split(", ")
    assert "fbank" in available and "hf:" in available and available == sorted(available)
    assert done.stderr.count("\n") == 1


@pytest.mark.e2e
def test_cuda_on_a_machine_without_it():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    done = run_cli(*BASE, "--device", "cuda")
    assert done.returncode == 2 and "--device cuda: CUDA is not available here" in done.stderr


@pytest.mark.e2e
def test_leaderboard_rejects_a_file_that_is_not_a_result(tmp_path):
    bogus = tmp_path / "result.json"
    bogus.write_text('{"schema": "something/else"}')
    done = run_cli("leaderboard", str(bogus))
    assert done.returncode == 2 and f"{bogus}: not a serbench result" in done.stderr
    bogus.write_text("{not json")
    done = run_cli("leaderboard", str(bogus))
    assert done.returncode == 2 and f"{bogus}:1: not valid JSON (Expecting property name" in done.stderr


def test_config_set_get_unset_roundtrip(tmp_path, capsys):
    assert main(["config", "set", "data.iemocap", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["config", "get", "data.iemocap"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path)
    assert main(["config", "unset", "data.iemocap"]) == 0
    assert main(["config", "get", "data.iemocap"]) == 2
