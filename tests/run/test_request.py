"""RunRequest: one frozen value for what a run was asked to be, however it was spelt."""

from __future__ import annotations

import dataclasses
import json

import pytest

from serbench.api.errors import SerbenchError
from serbench.cli.main import build_parser
from serbench.cli.running import request_from_args
from serbench.run.plan import load_plan, plan, request_of
from serbench.run.request import RunRequest


def test_the_three_spellings_of_overrides_are_one_request():
    strings = RunRequest("fbank", "superb", overrides=["train.lr=1e-4", "upstream.layers=[1, 2]"])
    mapping = RunRequest("fbank", "superb", overrides={"train": {"lr": 1e-4}, "upstream": {"layers": [1, 2]}})
    triples = RunRequest("fbank", "superb", overrides=(("train", "lr", 1e-4), ("upstream", "layers", (1, 2))))
    assert strings == mapping == triples
    assert strings.overrides == (("train", "lr", 1e-4), ("upstream", "layers", (1, 2)))
    assert strings.override_sections() == {"train": {"lr": 1e-4}, "upstream": {"layers": [1, 2]}}


def test_a_request_cannot_change_under_its_plan():
    request = RunRequest("fbank", "superb", seeds=[0, 1])
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.seeds = (2,)
    copy = request.override_sections()
    copy.setdefault("train", {})["lr"] = 1.0  # the working copy is the caller's
    assert request.overrides == () and request.seeds == (0, 1)
    assert request.replace(seeds=(2,)).seeds == (2,) and request.seeds == (0, 1)
    hash(RunRequest("fbank", "superb", overrides=["upstream.layers=[1, 2]"]))  # nested values frozen too


def test_a_malformed_override_is_one_error_naming_it():
    with pytest.raises(SerbenchError, match=r"-o 'trainlr=1': expected section.param=value"):
        RunRequest("fbank", "superb", overrides=["trainlr=1"])


def test_the_cli_and_the_python_api_make_the_same_request():
    args = build_parser().parse_args(["run", "--upstream", "fbank", "--downstream", "superb", "--protocol", "synthetic",
                                      "--seeds", "0,1", "-o", "train.max_epochs=1", "--device", "cpu"])
    assert request_from_args(args) == RunRequest("fbank", "superb", protocol="synthetic", seeds=(0, 1), device="cpu",
                                                 overrides={"train": {"max_epochs": 1}})


def test_a_run_directorys_config_gives_back_its_request(tmp_path):
    request = RunRequest("fbank", "superb", protocol="synthetic", device="cpu",
                         overrides=["protocol.per_class=1", "train.max_epochs=1"])
    the_plan = plan(request)
    rebuilt = request_of(the_plan.config, "cpu")
    assert plan(rebuilt).run_id == the_plan.run_id
    assert rebuilt.override_sections() == the_plan.config["overrides"]
    run_dir = tmp_path / the_plan.run_id
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps(the_plan.config))
    assert load_plan(run_dir, "cpu").config == the_plan.config
