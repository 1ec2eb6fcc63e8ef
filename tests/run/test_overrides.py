"""-o overrides: literals only, typed, unknown keys listed."""

import pytest

from serbench.api.errors import SerbenchError
from serbench.run.overrides import parse_overrides, parse_value
from serbench.run.plan import plan
from serbench.run.request import RunRequest


def test_values_are_literals_and_never_code(tmp_path):
    marker = tmp_path / "pwned"
    text = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    assert parse_value(text) == text  # kept as a plain string
    assert not marker.exists()
    assert parse_value("1e-4") == pytest.approx(1e-4)
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("speaker") == "speaker"


def test_parse_groups_by_section():
    assert parse_overrides(["train.lr=1e-4", "downstream.hidden=128"]) == {
        "train": {"lr": 1e-4},
        "downstream": {"hidden": 128},
    }


@pytest.mark.parametrize(
    "item, message",
    [
        ("train.lr", "expected section.param=value"),
        ("trian.lr=1", r"unknown section 'trian' \(did you mean 'train'\?\)"),
        ("lr=1", "expected section.param=value"),
    ],
)
def test_malformed_overrides(item, message):
    with pytest.raises(SerbenchError, match=message):
        parse_overrides([item])


def test_plan_applies_types_and_rejects_unknown_keys():
    resolved = plan(RunRequest("fbank", "superb", protocol="synthetic", device="cpu",
                    overrides=["train.lr=1", "train.shuffle_labels=true", "downstream.hidden=64"]))
    assert resolved.config["train"]["lr"] == 1.0 and isinstance(resolved.config["train"]["lr"], float)
    assert resolved.config["train"]["shuffle_labels"] is True
    assert resolved.config["downstream"]["params"] == {"hidden": 64}
    with pytest.raises(SerbenchError, match=r"-o downstream.hiden: unknown parameter.*valid keys: .*downstream.hidden"):
        plan(RunRequest("fbank", "superb", protocol="synthetic", overrides=["downstream.hiden=3"]))
    with pytest.raises(SerbenchError, match=r"-o train.batch_size: expected int, got 3.5"):
        plan(RunRequest("fbank", "superb", protocol="synthetic", overrides=["train.batch_size=3.5"]))


def test_run_id_follows_the_resolved_configuration():
    a = plan(RunRequest("fbank", "superb", protocol="synthetic", device="cpu"))
    b = plan(RunRequest("fbank", "superb", protocol="synthetic", device="cpu", overrides=["downstream.hidden=256"]))
    c = plan(RunRequest("fbank", "superb", protocol="synthetic", device="cpu", overrides=["downstream.hidden=128"]))
    assert a.run_id.startswith("synthetic_fbank_superb_")
    assert a.run_id == b.run_id and b.config["overrides"] == {}  # 256 is the default: the same run (issue 22)
    assert a.config["downstream"] == b.config["downstream"] and b.run_id != c.run_id
