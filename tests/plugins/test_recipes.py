"""Recipes: the paper's training applied by default, the shared one on request, -o over both."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from serbench.api.errors import SerbenchError
from serbench.api.recipes import Recipe
from serbench.run.plan import describe_recipe, plan
from serbench.run.registry import registry
from serbench.run.request import RunRequest
from serbench.run.trainer import TRAIN_PARAMS

from conftest import run_cli

# every train parameter at its default; train.targets at its default is left out of the configuration
# (a run without soft labels keeps the id it had)
TRAIN_DEFAULTS = {p.name: p.default for p in TRAIN_PARAMS if p.name != "targets"}
METHODS = ("sap_gap", "wap_la", "wavlm_cond", "gmp_atl")


@pytest.mark.parametrize("method", METHODS)
def test_paper_recipe_is_the_default_and_every_value_lands_in_the_config(method):
    recipe: Recipe = registry().get("downstream", method).meta.recipe
    config = plan(RunRequest("tiny", method, protocol="iemocap_5fold", data=".", recipe=None)).config
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
    config = plan(RunRequest("tiny", method, protocol="iemocap_5fold", data=".", recipe="shared")).config
    assert config["recipe"] == {"name": "shared"}
    assert config["train"] == TRAIN_DEFAULTS
    # only a method whose stages train the encoder keeps fine-tuning under the shared recipe
    wants_encoder = registry().get("downstream", method).meta.upstream == "finetune"
    assert config["upstream"]["params"]["finetune"] is wants_encoder


@pytest.mark.parametrize("recipe", ["paper", "shared"])
def test_user_overrides_win_over_either_recipe(recipe):
    config = plan(RunRequest("tiny", "sap_gap", protocol="iemocap_5fold", data=".", recipe=recipe,
                  overrides=["train.lr=0.5", "upstream.finetune=false"])).config
    assert config["train"]["lr"] == 0.5 and config["upstream"]["params"]["finetune"] is False
    if recipe == "paper":
        assert config["recipe"]["replaced_by_user"] == ["train.lr", "upstream.finetune"]
        assert "train.lr" not in config["recipe"]["values"]
        assert config["train"]["batch_size"] == 64  # the rest of the recipe stays


def test_recipes_change_the_run_id():
    ids = {plan(RunRequest("tiny", "gmp_atl", protocol="synthetic", recipe=r)).run_id for r in ("paper", "shared")}
    assert len(ids) == 2


def test_recipe_fine_tuning_is_not_applied_to_an_encoder_without_weights():
    config = plan(RunRequest("fbank", "sap_gap", protocol="synthetic")).config
    assert config["upstream"]["params"]["finetune"] is False
    assert "fbank has no trainable weights" in config["recipe"]["not_applied"]["upstream.finetune"]


def test_recipe_mistakes_are_one_line():
    with pytest.raises(SerbenchError, match="superb declares no paper recipe"):
        plan(RunRequest("fbank", "superb", protocol="synthetic", recipe="paper"))
    with pytest.raises(SerbenchError, match="--recipe 'best'"):
        plan(RunRequest("fbank", "sap_gap", protocol="synthetic", recipe="best"))
    with pytest.raises(SerbenchError, match="sap_gap pools with its own"):
        plan(RunRequest("fbank", "sap_gap", pooling="mean", protocol="synthetic"))


@pytest.mark.e2e
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
    assert recorded["name"] == "paper" and recorded["demo"]  # the paper's 1e-4, or the demo variant's named value
    assert recorded["values"]["upstream.lr"] == recorded["demo"].get("upstream.lr", 1e-4)
    assert result["config"]["params"]["train"]["weight_decay"] == 0.0
    shared = run_cli("run", "--upstream", "tiny", "--downstream", "gmp_atl", "--protocol", "synthetic",
                     "--recipe", "shared", "--prepare", "--out", str(tmp_path), *fast)  # planned and checked only
    assert shared.returncode == 0, shared.stderr
    configs = [json.loads(p.read_text())["recipe"]["name"] for p in tmp_path.glob("*/config.json")]
    assert sorted(configs) == ["paper", "shared"]  # a run of its own, under the shared recipe


@pytest.mark.e2e
def test_list_shows_the_recipe():
    done = run_cli("list", "downstreams", "wavlm_cond")
    assert done.returncode == 0, done.stderr
    assert "recipe paper" in done.stdout and "upstream.lr=1e-05" in done.stdout


@pytest.mark.parametrize("method", METHODS)
def test_reported_rows_say_what_they_were_measured_with(method):
    from serbench.report.leaderboard import REPORTED_FIELDS, UNITS

    reg = registry()
    rows = reg.get("downstream", method).meta.reported
    assert rows
    for row in rows:
        assert all(row.get(k) not in (None, "") for k in REPORTED_FIELDS), row
        assert row["unit"] in UNITS and row["protocol"] in reg.specs["protocol"]
        assert 0 < row["value"] * UNITS[row["unit"]] <= 100  # one scale once converted


@pytest.mark.e2e
def test_reported_table_is_in_percent_with_split_encoder_and_pooling():
    done = run_cli("leaderboard", "--reported")
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[0]
    for column in ("test split", "encoder", "pooling", "reported (%)"):
        assert column in header
    wavlm_row = next(line for line in done.stdout.splitlines() if "gender=sum " in line)
    assert "32.00 (from 0–1)" in wavlm_row and "Development" in wavlm_row and "| std " in wavlm_row


def _toy_fold(n_dev: int = 12, n_test: int = 12):
    """Random features of 4 classes, a class signal in dimension k: dev and test disjoint."""
    from serbench.api.protocol import Utterance
    from serbench.run.batching import FeatureBatcher
    from serbench.run.trainer import FoldData

    rng = np.random.default_rng(0)
    classes = ["a", "b", "c", "d"]
    utterances, features, splits = {}, {}, {"train": [], "dev": [], "test": []}
    for split, n in (("train", 40), ("dev", n_dev), ("test", n_test)):
        for k in range(n):
            uid = f"{split}{k}"
            utterances[uid] = Utterance(id=uid, path=None, label=classes[k % 4], speaker=f"{split}{k % 3}")
            x = rng.normal(size=(1, 6, 8)).astype(np.float32)
            x[0, :, k % 4] += 0.6  # weak signal: scores move from epoch to epoch
            features[uid] = x
            splits[split].append(uid)
    batcher = FeatureBatcher(features, utterances, classes)
    return FoldData(batcher, utterances, classes, splits["train"], splits["dev"], splits["test"])


class _Head(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(8, 4)

    def forward(self, batch):
        mask = batch["mask"][:, :, None].float()
        frames = batch["features"][:, -1]
        return {"logits": self.linear((frames * mask).sum(1) / mask.sum(1))}


@pytest.mark.parametrize("split", ["dev", "test"])
def test_the_epoch_is_selected_on_the_split_train_select_split_names(split):
    """Each epoch's selection score is the macro-F1 (scikit-learn) of that epoch's predictions on
    the named split; the best epoch is the first maximum of those scores. (Before
    train.select_split existed, every score was dev's: the 'test' case fails there.)"""
    from sklearn.metrics import f1_score

    from serbench.run.trainer import TRAIN_PARAMS, predict, train_fold

    data = _toy_fold()
    params = {**{p.name: p.default for p in TRAIN_PARAMS}, "max_epochs": 8, "patience": 8, "lr": 0.05,
              "batch_size": 8, "select_split": split}
    ids = data.test if split == "test" else data.dev
    truth = [data.utterances[i].label for i in ids]
    model, expected = _Head(), []

    def on_epoch(epoch, score):
        probs = predict(model, data, ids, torch.device("cpu"), 8)
        expected.append(f1_score(truth, [data.classes[k] for k in probs.argmax(1)], average="macro",
                                 labels=data.classes, zero_division=0))

    torch.manual_seed(0)
    outcome = train_fold(model, _xent, data, "macro_f1", params, 0, torch.device("cpu"), on_epoch=on_epoch)
    assert outcome.dev_history == pytest.approx(expected)
    assert outcome.best_epoch == int(np.argmax(expected)) + 1
    assert len(set(np.round(expected, 6))) > 1  # the scores moved: the selection had something to choose


def _xent(outputs, batch):
    return torch.nn.functional.cross_entropy(outputs["logits"], batch["labels"])


def test_wavlm_cond_selects_on_msp_podcast_development_when_the_run_scores_it(tmp_path):
    """The paper reports Development at its best epoch (mean over seeds): scored on Development,
    the paper recipe selects each seed's epoch there and evaluates all 20 epochs; scored on Test1,
    selection stays on the fold's dev (Development itself) and the record says why."""
    from lookalike import write_msp_podcast

    write_msp_podcast(tmp_path)
    development = plan(RunRequest("tiny", "wavlm_cond", protocol="msp_podcast", data=tmp_path, seeds=(0, 1),
                       overrides=["protocol.test_set=Development"])).config
    assert development["train"]["select_split"] == "test"
    assert development["train"]["patience"] == development["train"]["max_epochs"] == 20
    assert "train.select_split" not in development["recipe"]["not_applied"]
    assert "epochs selected on the scored split itself" in describe_recipe(development)
    test1 = plan(RunRequest("tiny", "wavlm_cond", protocol="msp_podcast", data=tmp_path)).config
    assert test1["train"]["select_split"] == "dev"
    assert test1["recipe"]["not_applied"]["train.select_split"] == (
        "meant for runs scored on Development; this run is scored on Test1")
    # the user's choice wins and is recorded as replacing the paper's
    own = plan(RunRequest("tiny", "wavlm_cond", protocol="msp_podcast", data=tmp_path,
               overrides=["protocol.test_set=Development", "train.select_split=dev"])).config
    assert own["train"]["select_split"] == "dev" and "train.select_split" in own["recipe"]["replaced_by_user"]


def test_pooling_and_loss_given_by_the_user_are_recorded_as_theirs():
    config = plan(RunRequest("tiny", "wavlm_cond", pooling="attention", loss="label_smoothing", protocol="synthetic")).config
    recipe = config["recipe"]
    assert config["pooling"]["name"] == "attention" and recipe["pooling"] is None
    assert recipe["replaced_by_user"] == ["pooling"]  # label_smoothing replaces no loss the paper named
    assert "; pooling attention (the user's), loss label_smoothing;" in describe_recipe(config)
    same = plan(RunRequest("tiny", "wavlm_cond", pooling="std", protocol="synthetic")).config["recipe"]  # naming the paper's
    assert same["pooling"] == "std" and "pooling" not in same["replaced_by_user"]


def test_fine_tuning_settings_on_a_frozen_encoder_are_listed_as_not_applied():
    frozen = plan(RunRequest("fbank", "wavlm_cond", pooling="std", protocol="iemocap_5fold", data=".")).config
    not_applied = frozen["recipe"]["not_applied"]
    assert set(not_applied) >= {"upstream.finetune", "upstream.lr", "train.crop_seconds"}
    assert "random crops apply to fine-tuning batches only" in not_applied["train.crop_seconds"]
    assert frozen["train"]["crop_seconds"] == 0.0 and "train.crop_seconds" not in frozen["recipe"]["values"]
    by_user = plan(RunRequest("tiny", "wavlm_cond", protocol="iemocap_5fold", data=".", overrides=["upstream.finetune=false"])).config
    assert "train.crop_seconds" in by_user["recipe"]["not_applied"] and by_user["train"]["crop_seconds"] == 0.0
    tuned = plan(RunRequest("tiny", "wavlm_cond", protocol="iemocap_5fold", data=".")).config  # fine-tuned: the crops apply
    assert tuned["train"]["crop_seconds"] == 5.0 and "train.crop_seconds" not in tuned["recipe"]["not_applied"]


# Each method's training as its paper describes it, typed here from the papers' descriptions (the
# reference the recorded recipe is checked against), and the choices the plugin names as its own
# with the value they take in the run.
PAPER_TABLES = {
    "sap_gap": {  # Hyeon et al. 2024: one stage, the encoder fine-tuned with the head
        "paper": {"upstream.finetune": True, "upstream.lr": 3e-5, "train.lr": 3e-5, "train.batch_size": 64,
                  "train.max_epochs": 30, "train.patience": 5, "train.select_on": "loss", "train.select_split": "dev",
                  "train.schedule": "cosine", "train.warmup_ratio": 0.1, "train.max_seconds": 19.0},
        "own": {"optimiser AdamW": None, "weight decay 0.01": ("train.weight_decay", 0.01),
                "gradient clipping 5": ("train.grad_clip", 5.0)},
        "protocol": ("iemocap_loso10", []),
    },
    "wavlm_cond": {  # Diatlova et al. 2024: one stage; best of every epoch on Development
        "paper": {"upstream.finetune": True, "upstream.lr": 1e-5, "train.lr": 1e-5, "train.batch_size": 32,
                  "train.max_epochs": 20, "train.patience": 20, "train.select_split": "test", "train.crop_seconds": 5.0},
        "own": {"optimiser AdamW": None, "weight decay 0.01": ("train.weight_decay", 0.01),
                "gradient clipping 5": ("train.grad_clip", 5.0), "constant learning rate": ("train.schedule", "constant")},
        "protocol": ("msp_podcast", ["protocol.test_set=Development"]),
    },
}


def _value(config: dict, key: str):
    section, _, name = key.partition(".")
    return config[section][name] if section == "train" else config[section]["params"][name]


@pytest.mark.parametrize("method", sorted(PAPER_TABLES))
def test_recorded_recipe_under_the_papers_protocol_is_the_papers_table(method, tmp_path):
    """Planned as the paper ran it: every stage value is the paper's, the optimiser and the other
    open choices are recorded as the plugin's own, nothing is set aside."""
    from lookalike import write_msp_podcast

    table = PAPER_TABLES[method]
    write_msp_podcast(tmp_path)
    protocol, options = table["protocol"]
    config = plan(RunRequest("tiny", method, protocol=protocol, data=tmp_path, overrides=options)).config
    assert config["recipe"]["not_applied"] == {} and config["recipe"]["replaced_by_user"] == []
    for key, value in table["paper"].items():
        assert _value(config, key) == value, key
    assert config["train"]["warmup_ratio"] == table["paper"].get("train.warmup_ratio", 0.0)
    for choice, setting in table["own"].items():
        assert choice in config["recipe"]["own_choices"], choice
        assert "not taken from the paper" in config["recipe"]["own_choices"][choice]
        if setting:
            assert _value(config, setting[0]) == setting[1], choice


@pytest.mark.parametrize("method", sorted(PAPER_TABLES))
@pytest.mark.e2e
def test_a_tiny_run_records_the_papers_table_with_its_demo_variant(method, tmp_path):
    """A real run on the demo corpus: result.json's recipe is the paper's table with the named
    demo values on top (and the test split's selection set aside), and run.log says so on the
    line after the run's id."""
    table = PAPER_TABLES[method]
    done = run_cli("run", "--upstream", "tiny", "--downstream", method, "--protocol", "synthetic", "--out", str(tmp_path),
                   "-o", "protocol.per_class=1", "-o", "train.max_epochs=1")  # one epoch: the user's, recorded so
    assert done.returncode == 0, done.stderr
    run_dir = next(p.parent for p in tmp_path.glob("*/result.json"))
    config = json.loads((run_dir / "config.json").read_text())
    assert json.loads((run_dir / "result.json").read_text())["config"]["recipe"] == config["recipe"]
    recipe = config["recipe"]
    assert recipe["replaced_by_user"] == ["train.max_epochs"] and config["train"]["max_epochs"] == 1
    demo = recipe["demo"]
    assert demo and recipe["demo_why"]
    for key, value in table["paper"].items():
        if key in recipe["not_applied"]:  # the demo corpus is scored on test sessions, not Development;
            # a demo that freezes its random encoder sets the fine-tuning settings aside
            frozen = demo.get("upstream.finetune") is False and key in ("upstream.lr", "train.crop_seconds")
            assert frozen or (key == "train.select_split" and _value(config, key) == "dev"), key
            continue
        if key in recipe["replaced_by_user"]:
            assert key not in recipe["values"]
            continue
        expected = demo.get(key, value)
        assert _value(config, key) == expected, key
        assert recipe["values"].get(key, TRAIN_DEFAULTS.get(key.partition(".")[2])) == expected, key  # or the harness's
    assert set(demo) <= set(table["paper"]) | {"downstream.heads"}  # a demo changes only named settings
    log = (run_dir / "run.log").read_text().splitlines()
    assert "] run " in log[0] or log[0].split(" ", 2)[-1].startswith("run ")
    assert "recipe paper (" in log[1]
    folds = [json.loads(p.read_text()) for p in (run_dir / "folds").glob("fold-*_seed-0.json")]
    assert folds and all(f["epochs_run"] <= config["train"]["max_epochs"] for f in folds)


@pytest.mark.e2e
def test_a_wavlm_cond_run_scored_on_development_selects_there_and_says_so(tmp_path):
    """End to end on an MSP-Podcast-like folder scored on Development: each epoch's selection
    score is that epoch's macro-F1 on Development (the test split), and the table beside the
    paper's rows says the epoch was selected on the scored split."""
    import pandas as pd
    from sklearn.metrics import f1_score

    from serbench.report.leaderboard import beside_reported
    from serbench.report.results import load_result

    from lookalike import write_msp_podcast

    rows = [[f"MSP-PODCAST_{k * 100 + n:04d}.wav", "ASHUFDCN"[n % 8], "4.2", "3.0", "5.5", str(100 + 10 * k + n % 6),
             ("Female", "Male")[n % 6 % 2], split]
            for k, split in enumerate(("Train", "Development", "Test1")) for n in range(24)]
    write_msp_podcast(tmp_path / "msp", rows)
    done = run_cli("run", "--upstream", "fbank", "--downstream", "wavlm_cond", "--protocol", "msp_podcast",
                   "--data", str(tmp_path / "msp"), "-o", "protocol.test_set=Development", "-o", "train.max_epochs=2",
                   "--out", str(tmp_path / "runs"))
    assert done.returncode == 0, done.stderr
    assert "epochs selected on the scored split itself" in done.stderr
    (run_dir,) = [p.parent for p in (tmp_path / "runs").glob("*/result.json")]
    record = json.loads((run_dir / "folds" / "fold-Development_seed-0.json").read_text())
    predictions = pd.read_csv(run_dir / "predictions.csv")
    assert predictions["label"].nunique() == 8  # every class in Development: macro-F1 over all eight
    best = f1_score(predictions["label"], predictions["prediction"], average="macro",
                    labels=sorted(set(predictions["label"])), zero_division=0)
    # the selected epoch's score is the best Development score, and it is what the test predictions score
    assert record["dev_history"][record["best_epoch"] - 1] == pytest.approx(max(record["dev_history"]))
    assert record["metrics"]["macro_f1"] == pytest.approx(max(record["dev_history"]), abs=1e-9)
    assert best == pytest.approx(record["metrics"]["macro_f1"], abs=1e-9)
    table = beside_reported([load_result(run_dir)], registry())
    assert "epoch selected on the scored split (optimistic)" in table
