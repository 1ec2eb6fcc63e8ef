"""GMP-ATL end to end on the embedded corpus: stages fed the training fold only, ablation."""

from __future__ import annotations

import torch

import serbench
from serbench.registry import create

SMALL = ["protocol.per_class=1", "train.max_epochs=1", "downstream.stage1_epochs=1", "downstream.stage2_epochs=1",
         "downstream.scales=[4, 8]", "downstream.lstm_hidden=8", "downstream.hidden=8", "downstream.stage_batch_size=8"]


def test_stages_see_only_the_training_fold_and_pseudo_labels_are_made(tmp_path, stage_feed):
    result = serbench.run("tiny", "gmp_atl", protocol="synthetic", out=tmp_path, overrides=SMALL)
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


def test_ablation_without_pseudo_labels_keeps_the_multitask_stage(tmp_path, stage_feed):
    result = serbench.run("tiny", "gmp_atl", protocol="synthetic", out=tmp_path,
                          overrides=SMALL + ["downstream.pseudo_labels=false", "loss.margin=0.3"])
    assert all(list(seen) == ["multitask"] for seen in stage_feed)
    assert result.data["config"]["params"]["loss"]["margin"] == 0.3


def test_masking_covers_hubert_share_of_frames():
    from serbench.registry import registry
    from serbench_plugins.methods.gmp_atl import span_mask

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
    from serbench.downstream import DownstreamContext

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


def test_without_gmps_runs_no_stage(tmp_path, stage_feed):
    serbench.run("tiny", "gmp_atl", protocol="synthetic", out=tmp_path, loss="ce",
                 overrides=SMALL + ["downstream.pseudo_labels=false", "downstream.multitask=false"])
    assert all(list(seen) == [] for seen in stage_feed)


def test_pseudo_label_stage_labels_the_frames_the_masked_stage_trains_on():
    """The masked-prediction stage reuses the labels the pseudo-label stage made from the same
    encoder; a resumed run labels again: both must give the same labels."""
    from serbench import finetune
    from serbench.batching import AudioBatcher
    from serbench.downstream import DownstreamContext
    from serbench.stages import GuardedBatcher, StageInput

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
    head.make_pseudo_labels(stage)
    assert set(head._targets) == set(fold.train)
    for chunk in stage.batches(8):
        for uid, frames in zip(chunk, head._frames(model, batcher(chunk))):
            for kept, again in zip(head._targets[uid], head.labels_for(frames)):
                assert torch.equal(kept, again)
