"""Recipes: the paper's training applied by default, the shared one on request, -o over both."""

from __future__ import annotations

import json

import pytest

from serbench.errors import SerbenchError
from serbench.plan import plan
from serbench.recipes import Recipe
from serbench.registry import registry
from serbench.trainer import TRAIN_PARAMS

from conftest import run_cli

TRAIN_DEFAULTS = {p.name: p.default for p in TRAIN_PARAMS}
METHODS = ("sap_gap", "wap_la", "wavlm_cond", "gmp_atl")


@pytest.mark.parametrize("method", METHODS)
def test_paper_recipe_is_the_default_and_every_value_lands_in_the_config(method):
    recipe: Recipe = registry().get("downstream", method).meta.recipe
    config = plan("tiny", method, protocol="iemocap_5fold", data=".", recipe=None).config
    assert config["recipe"]["name"] == "paper" and config["recipe"]["demo"] is None
    not_applied = config["recipe"]["not_applied"]
    for key, value in recipe.overrides.items():
        section, _, name = key.partition(".")
        found = config[section] if section == "train" else config[section]["params"]
        if key in not_applied:  # only a setting meant for another test split (IEMOCAP's is a test session)
            assert key in recipe.only_when_scored_on and "this run is scored on test session" in not_applied[key]
            assert found[name] != value
            continue
        assert found[name] == value, key
    assert config["recipe"]["values"] == {k: v for k, v in recipe.overrides.items() if k not in not_applied}
    assert config["recipe"]["own_choices"] == dict(recipe.own_choices)
    if recipe.loss:
        assert config["loss"]["name"] == recipe.loss


@pytest.mark.parametrize("method", METHODS)
def test_shared_recipe_is_the_harness_training(method):
    config = plan("tiny", method, protocol="iemocap_5fold", data=".", recipe="shared").config
    assert config["recipe"] == {"name": "shared"}
    assert config["train"] == TRAIN_DEFAULTS
    # only a method whose stages train the encoder keeps fine-tuning under the shared recipe
    wants_encoder = registry().get("downstream", method).meta.upstream == "finetune"
    assert config["upstream"]["params"]["finetune"] is wants_encoder


@pytest.mark.parametrize("recipe", ["paper", "shared"])
def test_user_overrides_win_over_either_recipe(recipe):
    config = plan("tiny", "sap_gap", protocol="iemocap_5fold", data=".", recipe=recipe,
                  overrides=["train.lr=0.5", "upstream.finetune=false"]).config
    assert config["train"]["lr"] == 0.5 and config["upstream"]["params"]["finetune"] is False
    if recipe == "paper":
        assert config["recipe"]["replaced_by_user"] == ["train.lr", "upstream.finetune"]
        assert "train.lr" not in config["recipe"]["values"]
        assert config["train"]["batch_size"] == 64  # the rest of the recipe stays


def test_recipes_change_the_run_id():
    ids = {plan("tiny", "gmp_atl", protocol="synthetic", recipe=r).run_id for r in ("paper", "shared")}
    assert len(ids) == 2


def test_recipe_fine_tuning_is_not_applied_to_an_encoder_without_weights():
    config = plan("fbank", "sap_gap", protocol="synthetic").config
    assert config["upstream"]["params"]["finetune"] is False
    assert "fbank has no trainable weights" in config["recipe"]["not_applied"]["upstream.finetune"]


def test_recipe_mistakes_are_one_line():
    with pytest.raises(SerbenchError, match="superb declares no paper recipe"):
        plan("fbank", "superb", protocol="synthetic", recipe="paper")
    with pytest.raises(SerbenchError, match="--recipe 'best'"):
        plan("fbank", "sap_gap", protocol="synthetic", recipe="best")
    with pytest.raises(SerbenchError, match="sap_gap pools with its own"):
        plan("fbank", "sap_gap", pooling="mean", protocol="synthetic")


def test_gmp_atl_run_shows_and_records_the_recipe(tmp_path):
    fast = ["-o", "protocol.per_class=1", "-o", "train.max_epochs=1", "-o", "downstream.stage1_epochs=1",
            "-o", "downstream.stage2_epochs=1", "-o", "downstream.scales=[4, 8]"]
    done = run_cli("run", "--upstream", "tiny", "--downstream", "gmp_atl", "--protocol", "synthetic",
                   "--out", str(tmp_path), *fast)
    assert done.returncode == 0, done.stderr
    assert "recipe paper (Pan et al. 2024" in done.stderr
    assert "the paper ran upstream hubert_base, protocol iemocap_5fold" in done.stderr
    result = json.loads(next(tmp_path.glob("*/result.json")).read_text())
    recorded = result["config"]["recipe"]
    assert recorded["name"] == "paper" and recorded["values"]["upstream.lr"] == 1e-4
    assert result["config"]["params"]["train"]["weight_decay"] == 0.0
    shared = run_cli("run", "--upstream", "tiny", "--downstream", "gmp_atl", "--protocol", "synthetic",
                     "--recipe", "shared", "--prepare", "--out", str(tmp_path), *fast)  # planned and checked only
    assert shared.returncode == 0, shared.stderr
    configs = [json.loads(p.read_text())["recipe"]["name"] for p in tmp_path.glob("*/config.json")]
    assert sorted(configs) == ["paper", "shared"]  # a run of its own, under the shared recipe


def test_list_shows_the_recipe():
    done = run_cli("list", "downstreams", "wavlm_cond")
    assert done.returncode == 0, done.stderr
    assert "recipe paper" in done.stdout and "upstream.lr=1e-05" in done.stdout


@pytest.mark.parametrize("method", METHODS)
def test_reported_rows_say_what_they_were_measured_with(method):
    from serbench.leaderboard import REPORTED_FIELDS, UNITS

    reg = registry()
    rows = reg.get("downstream", method).meta.reported
    assert rows
    for row in rows:
        assert all(row.get(k) not in (None, "") for k in REPORTED_FIELDS), row
        assert row["unit"] in UNITS and row["protocol"] in reg.specs["protocol"]
        assert 0 < row["value"] * UNITS[row["unit"]] <= 100  # one scale once converted


def test_reported_table_is_in_percent_with_split_encoder_and_pooling():
    done = run_cli("leaderboard", "--reported")
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[0]
    for column in ("test split", "encoder", "pooling", "reported (%)"):
        assert column in header
    wavlm_row = next(line for line in done.stdout.splitlines() if "gender=sum " in line)
    assert "32.00 (from 0–1)" in wavlm_row and "Development" in wavlm_row and "| std " in wavlm_row
