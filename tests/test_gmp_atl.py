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


def test_ablation_without_pseudo_labels(tmp_path, stage_feed):
    result = serbench.run("tiny", "gmp_atl", protocol="synthetic", out=tmp_path,
                          overrides=SMALL + ["downstream.pseudo_labels=false", "loss.margin=0.3"])
    assert all(list(seen) == ["multitask"] for seen in stage_feed)
    assert result.data["config"]["params"]["loss"]["margin"] == 0.3
