"""GMP-ATL end to end on the embedded corpus: stages fed the training fold only, ablation."""

from __future__ import annotations

import pytest
import torch

import serbench
from serbench.run.registry import create

SMALL = ["protocol.per_class=1", "train.max_epochs=1", "downstream.stage1_epochs=1", "downstream.stage2_epochs=1",
         "downstream.scales=[4, 8]", "downstream.lstm_hidden=8", "downstream.hidden=8", "downstream.stage_batch_size=8"]


# Pan et al.'s table, by hand from the source line the plugin cites: Adam (AdamW without weight
# decay) at lr 1e-4 for encoder and heads, batch 64. The paper gives no epochs, schedule or
# stopping rule: those fields must be marked as the plugin's own (or the demo's, or the user's).
PAPER = {"multitask": {"optimiser": "Adam", "lr": 1e-4, "batch": 64},
         "masked_prediction": {"optimiser": "Adam", "lr": 1e-4, "batch": 64},
         "supervised": {"optimiser": "weight decay 0.0", "lr": 1e-4, "encoder_lr": 1e-4, "batch": 64}}


def check_stage_table(record: dict, params: dict, paper: dict) -> None:
    """Every recorded field is the paper's value, or the demo's or the user's value in force
    (read back from the run's parameters), or a field the paper does not give."""
    for row in record["stages"]:
        stage = row["stage"]
        for field in ("optimiser", "lr", "encoder_lr", "schedule", "epochs", "batch", "stopping"):
            if field not in row:
                continue
            entry = row[field]
            if entry["from"] == "paper":
                expected = paper[stage][field]
                assert expected in entry["value"] if isinstance(expected, str) else entry["value"] == expected
            elif entry["from"] in ("demo", "user") and "key" in entry:
                section, _, name = entry["key"].partition(".")
                assert params[section][name] == entry["value"], (stage, field)
                if entry["from"] == "demo":
                    assert record["demo"][entry["key"]] == entry["value"], (stage, field)
            elif entry["from"] == "plugin":
                assert field not in paper.get(stage, {}), (stage, field)


def _optimisers(monkeypatch) -> list[tuple]:
    """(class, learning rate of each parameter group, weight decay) of every optimiser built."""
    built = []
    for name in ("Adam", "AdamW"):
        cls = getattr(torch.optim, name)

        def spy(params, *args, _cls=cls, **kwargs):
            optimiser = _cls(params, *args, **kwargs)
            groups = optimiser.param_groups
            built.append((_cls.__name__, tuple(g["lr"] for g in groups), groups[0]["weight_decay"]))
            return optimiser

        monkeypatch.setattr(torch.optim, name, spy)
    return built


@pytest.mark.e2e  # an in-process training of minutes on a loaded machine
def test_stages_see_only_the_training_fold_pseudo_labels_are_made_and_the_recipe_is_recorded(
        tmp_path, stage_feed, monkeypatch):
    built = _optimisers(monkeypatch)
    result = serbench.run_benchmark("tiny", "gmp_atl", protocol="synthetic", out=tmp_path, overrides=SMALL)
    config = result.data["config"]
    record, params = config["recipe"], config["params"]
    assert [row["stage"] for row in record["stages"]] == ["multitask", "pseudo_labels", "masked_prediction", "supervised"]
    check_stage_table(record, params, PAPER)
    stages = {row["stage"]: row for row in record["stages"]}
    assert stages["multitask"]["batch"] == {"value": 8, "from": "user", "key": "downstream.stage_batch_size"}
    assert stages["multitask"]["schedule"] == {"value": "constant", "from": "plugin"}
    assert stages["masked_prediction"]["lr"] == {"value": 1e-4, "from": "paper", "key": "downstream.stage_lr"}
    assert stages["supervised"]["epochs"] == {"value": 1, "from": "user", "key": "train.max_epochs"}
    assert "no gradient clipping" in stages["multitask"]["notes"]
    # what ran, per fold: Adam for stages 1 and 2 at the stage lr, then AdamW without weight decay,
    # heads at train.lr and the encoder at upstream.lr
    final = ("AdamW", (params["train"]["lr"], params["upstream"]["lr"]), 0.0)
    assert built == [("Adam", (1e-4,), 0), ("Adam", (1e-4,), 0), final] * 5
    assert result.data["config"]["loss"] == "am_softmax"
    assert result.data["config"]["params"]["upstream"]["finetune"] is True
    protocol = create("protocol", "synthetic", None, per_class=1)
    for seen, fold in zip(stage_feed, protocol.folds):
        assert list(seen) == ["multitask", "pseudo_labels", "masked_prediction"]
        for ids in seen.values():
            assert ids == set(fold.train)  # neither dev nor test
    state = torch.load(result.run_dir / "stages" / "fold-1_seed-0" / "2-pseudo_labels.pt", weights_only=True)
    centres = state["downstream.centres_1"]
    assert centres.shape == (8, 32) and centres.abs().sum() > 0


@pytest.mark.e2e  # an in-process staged training: 15-108 s in the default run at load 4-13
def test_ablation_without_pseudo_labels_keeps_the_multitask_stage(tmp_path, stage_feed):
    result = serbench.run_benchmark("tiny", "gmp_atl", protocol="synthetic", out=tmp_path,
                          overrides=SMALL + ["downstream.pseudo_labels=false", "loss.margin=0.3"])
    assert all(list(seen) == ["multitask"] for seen in stage_feed)
    assert result.data["config"]["params"]["loss"]["margin"] == 0.3


def test_masking_covers_hubert_share_of_frames():
    from serbench.run.registry import registry
    from serbench_plugins.gmp_atl.model import span_mask

    spec = registry().get("downstream", "gmp_atl")
    defaults = {p.name: p.default for p in spec.params}
    torch.manual_seed(0)
    import numpy as np

    np.random.seed(0)
    lengths = torch.tensor([400, 250, 300, 500] * 16)
    masked = span_mask(lengths, defaults["mask_prob"], defaults["mask_length"])
    valid = torch.arange(masked.shape[1])[None] < lengths[:, None]
    share = float(masked.sum() / valid.sum())
    assert not (masked & ~valid).any()
    # HuBERT (mask_prob 0.8, spans of 10 in this formula) masks about half of the frames
    assert 0.45 <= share <= 0.65, share


def test_ce_ablation_trains_a_plain_linear_classifier():
    from serbench.api.downstream import DownstreamContext

    def model(loss):
        context = DownstreamContext(3, 16, 50.0, ("a", "b", "c", "d"), lambda d: None, (1, 1, 1, 1), loss=loss)
        return create("downstream", "gmp_atl", context, scales=(4,), lstm_hidden=8, hidden=8).eval()

    batch = {"features": torch.randn(2, 3, 20, 16), "mask": torch.ones(2, 20, dtype=torch.bool)}
    ams, ce = model("am_softmax"), model("ce")
    ce.load_state_dict(ams.state_dict())
    out_ams, out_ce = ams(batch), ce(batch)
    assert "cosine" in out_ams and "cosine" not in out_ce
    z = ce.utterance(batch["features"][:, -1], batch["mask"])
    torch.testing.assert_close(out_ce["logits"], ce.emotion_ce(z))  # W z + b, not 30 cos


@pytest.mark.e2e  # an in-process staged training: 15-108 s in the default run at load 4-13
def test_without_gmps_runs_no_stage(tmp_path, stage_feed):
    serbench.run_benchmark("tiny", "gmp_atl", protocol="synthetic", out=tmp_path, loss="ce",
                 overrides=SMALL + ["downstream.pseudo_labels=false", "downstream.multitask=false"])
    assert all(list(seen) == [] for seen in stage_feed)


def test_pseudo_label_stage_labels_the_frames_the_masked_stage_trains_on():
    """The masked-prediction stage reuses the labels the pseudo-label stage made from the same
    encoder; a resumed run labels again: both must give the same labels."""
    from serbench.api.downstream import DownstreamContext
    from serbench.api.stages import StageInput
    from serbench.run import finetune, loop
    from serbench.run.batching import AudioBatcher
    from serbench.run.stages import GuardedBatcher

    protocol = create("protocol", "synthetic", None, per_class=1)
    fold = protocol.folds[0]
    upstream = create("upstream", "tiny")
    finetune.prepare(upstream, freeze_frontend=True, gradient_checkpointing=False, spec_augment=False)
    context = DownstreamContext(upstream.num_layers, upstream.dim, upstream.frame_rate, tuple(protocol.classes),
                                lambda d: None, tuple(protocol.label_counts(fold.train)))
    head = create("downstream", "gmp_atl", context, scales=(4, 8), lstm_hidden=8, hidden=8, stage_batch_size=8)
    model = finetune.FineTuneModel(upstream, head, range(upstream.num_layers), frontend_cache={})
    batcher = GuardedBatcher(AudioBatcher(protocol.utterances, protocol.classes, 0.0, 0), fold.train, False, "p")
    stage = StageInput(tuple(fold.train), batcher, torch.device("cpu"), 0, model)
    pseudo_labels = {s.name: s for s in head.stages()}["pseudo_labels"]
    loop.train(pseudo_labels, stage)
    targets = head._running["targets"]
    assert set(targets) == set(fold.train)
    for chunk in stage.batches(8):
        for uid, frames in zip(chunk, head._frames(model, batcher(chunk))):
            for kept, again in zip(targets[uid], head.labels_for(frames)):
                assert torch.equal(kept, again)


def _tiny_stage(spec_augment: bool, apply_spec_augment: bool):
    """A gmp_atl head on a tiny encoder whose checkpoint config sets ``apply_spec_augment``,
    prepared with ``upstream.spec_augment``; a stage input over fold 1's training split."""
    from serbench.api.downstream import DownstreamContext
    from serbench.api.stages import StageInput
    from serbench.run import finetune
    from serbench.run.batching import AudioBatcher
    from serbench.run.stages import GuardedBatcher

    protocol = create("protocol", "synthetic", None, per_class=1)
    fold = protocol.folds[0]
    upstream = create("upstream", "tiny")
    upstream.model.config.apply_spec_augment = apply_spec_augment
    finetune.prepare(upstream, freeze_frontend=True, gradient_checkpointing=False, spec_augment=spec_augment)
    context = DownstreamContext(upstream.num_layers, upstream.dim, upstream.frame_rate, tuple(protocol.classes),
                                lambda d: None, tuple(protocol.label_counts(fold.train)))
    head = create("downstream", "gmp_atl", context, scales=(4,), lstm_hidden=8, hidden=8, stage_batch_size=8,
                  stage1_epochs=1)
    model = finetune.FineTuneModel(upstream, head, range(upstream.num_layers), frontend_cache={})
    batcher = GuardedBatcher(AudioBatcher(protocol.utterances, protocol.classes, 0.0, 0), fold.train, True, "s")
    return head, model, StageInput(tuple(fold.train), batcher, torch.device("cpu"), 0, model)


def test_spec_augment_on_a_checkpoint_that_disables_it_is_refused_before_the_stages():
    import pytest

    from serbench.api.errors import SerbenchError
    from serbench.run import loop

    head, model, stage = _tiny_stage(spec_augment=True, apply_spec_augment=False)
    # why: transformers ignores explicit masks when the checkpoint's config turns SpecAugment off
    batch = stage.batcher(list(stage.ids[:2]))
    model.eval()
    with torch.no_grad():
        lengths = model.upstream.model._get_feat_extract_output_lengths(batch["wav_lengths"])
        masks = torch.ones(len(lengths), int(lengths.max()), dtype=torch.bool)
        plain = model.encode(batch).hidden_states[-1]
        masked = model.encode(batch, mask_time_indices=masks).hidden_states[-1]
    torch.testing.assert_close(plain, masked)  # every frame "masked", nothing changed
    with pytest.raises(SerbenchError, match=r"apply_spec_augment=false.*ignore the masked-prediction stage's masks"):
        loop.train(head.stages()[0], stage)  # refused at the first stage, before any training
    # the method's default (spec_augment=false) turns the explicit masks on: they act
    head, model, stage = _tiny_stage(spec_augment=False, apply_spec_augment=False)
    model.eval()
    with torch.no_grad():
        assert not torch.allclose(model.encode(batch).hidden_states[-1],
                                  model.encode(batch, mask_time_indices=masks).hidden_states[-1])
    loop.train(head.stages()[0], stage)


def test_reported_rows_name_the_footnotes_checkpoint_and_the_training_share_is_shown(tmp_path):
    from serbench.report.leaderboard import checkpoint_differs, training_share
    from serbench.report.results import Result
    from serbench.run.registry import registry

    rows = registry().get("downstream", "gmp_atl").meta.reported
    assert {row["checkpoint"] for row in rows} == {"facebook/hubert-base-ls960"}
    same = Result({"config": {"upstream": "hubert_base"}, "upstream_fingerprint": "facebook/hubert-base-ls960@dba3bb0"},
                  tmp_path)
    assert checkpoint_differs(rows[0], same) == ""
    large = Result({"config": {"upstream": "hubert_large"}, "upstream_fingerprint": "facebook/hubert-large-ll60k@ff022d"},
                   tmp_path)
    assert checkpoint_differs(rows[0], large).startswith("another checkpoint (facebook/hubert-large-ll60k;")
    # the synthetic corpus's folds: 4 training sessions, 20% of their utterances per label held out as dev
    protocol = create("protocol", "synthetic", None)
    folds = [{"n_train": len(f.train), "n_dev": len(f.dev)} for f in protocol.folds]
    # by hand: 4 sessions x 2 speakers x 4 labels x 16 = 512; round(0.2 x 128) = 26 per label as dev, 104 in all
    assert folds[0] == {"n_train": 408, "n_dev": 104}
    ran = Result({"config": {"upstream": "tiny"}, "folds": folds}, tmp_path)
    note = training_share(rows[0], ran)
    assert note.startswith("; trained on 80% of the training speakers' utterances (20% held out as dev; the paper: ")
    assert training_share({k: v for k, v in rows[0].items() if k != "train_split"}, ran) == ""
