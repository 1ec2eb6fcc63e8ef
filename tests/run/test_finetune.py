"""Frozen mode leaves the encoder as it was; fine-tune mode trains it (front-end frozen)."""

from __future__ import annotations

import pytest
import torch

import serbench
from serbench.api.downstream import DownstreamContext
from serbench.run import finetune
from serbench.run.batching import AudioBatcher, FeatureBatcher
from serbench.run.features import extract
from serbench.run.registry import create
from serbench.run.trainer import TRAIN_PARAMS, FoldData, train_fold

PARAMS = {p.name: p.default for p in TRAIN_PARAMS} | {"max_epochs": 2, "patience": 2, "lr": 1e-3}


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _setup(per_class=2):
    protocol = create("protocol", "synthetic", None, per_class=per_class)
    fold = protocol.folds[0]
    upstream = create("upstream", "tiny")
    context = DownstreamContext(upstream.num_layers, upstream.dim, upstream.frame_rate, tuple(protocol.classes),
                                lambda dim: create("pooling", "mean", dim))
    head = create("downstream", "superb", context)
    loss = create("loss", "ce", protocol.classes, protocol.label_counts(fold.train))
    return protocol, fold, upstream, head, loss


def test_frozen_mode_leaves_encoder_weights_unchanged():
    protocol, fold, upstream, head, loss = _setup()
    before = _snapshot(upstream)
    utts = [protocol.utterances[i] for i in fold.train + fold.dev + fold.test]
    features, _ = extract(upstream, utts, torch.device("cpu"), tuple(range(upstream.num_layers)))
    batcher = FeatureBatcher(features, protocol.utterances, protocol.classes)
    data = FoldData(batcher, protocol.utterances, protocol.classes, fold.train, fold.dev, fold.test)
    head_before = _snapshot(head)
    train_fold(head, loss, data, "ua", PARAMS, 0, torch.device("cpu"))
    after = _snapshot(upstream)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(not torch.equal(head_before[k], v) for k, v in _snapshot(head).items())


def test_finetune_mode_changes_the_encoder_but_not_its_frontend():
    protocol, fold, upstream, head, loss = _setup()
    before = _snapshot(upstream)
    finetune.prepare(upstream, freeze_frontend=True, gradient_checkpointing=True)
    model = finetune.FineTuneModel(upstream, head, range(upstream.num_layers))
    batcher = AudioBatcher(protocol.utterances, protocol.classes, crop_seconds=1.0, seed=0)
    data = FoldData(batcher, protocol.utterances, protocol.classes, fold.train, fold.dev, fold.test)
    outcome = train_fold(model, loss, data, "ua", PARAMS | {"bf16": True}, 0, torch.device("cpu"),
                         groups=finetune.parameter_groups(model, 1e-3, 1e-3))
    assert outcome.test_probs.shape == (len(fold.test), 4)
    after = _snapshot(upstream)
    frontend = [k for k in before if k.startswith("model.feature_extractor.")]
    encoder = [k for k in before if k.startswith("model.encoder.layers.")]
    assert frontend and encoder
    assert all(torch.equal(before[k], after[k]) for k in frontend)
    assert any(not torch.equal(before[k], after[k]) for k in encoder)


def test_training_crops_are_bounded_and_evaluation_is_whole():
    protocol = create("protocol", "synthetic", None, per_class=2)
    ids = list(protocol.utterances)[:4]
    batcher = AudioBatcher(protocol.utterances, protocol.classes, crop_seconds=0.5, seed=0)
    assert int(batcher(ids, train=True)["wav_lengths"].max()) <= 8000
    whole = batcher(ids)["wav_lengths"]
    assert int(whole.max()) > 8000


@pytest.mark.e2e  # an in-process training of minutes on a loaded machine
def test_finetune_run_through_the_runner(tmp_path):
    result = serbench.run_benchmark("tiny", "superb", protocol="synthetic", out=tmp_path,
                          overrides=["protocol.per_class=2", "train.max_epochs=1", "upstream.finetune=true"])
    assert result.data["config"]["params"]["upstream"]["finetune"] is True
    assert result.data["cache"] == {"hits": 0, "misses": 0, "bytes": 0}  # the cache is bypassed
    assert len(result.data["folds"]) == 5


def _group_norm_encoder(tmp_path):
    from serbench_plugins.upstreams.hf import load

    from tiny_checkpoints import save_checkpoint

    return load(str(save_checkpoint(tmp_path / "hubert", "hubert_group")))


def test_fine_tuning_forward_of_a_group_norm_encoder_does_not_see_its_batch_mates(tmp_path):
    encoder = _group_norm_encoder(tmp_path)
    assert not encoder.batch_safe
    finetune.prepare(encoder, freeze_frontend=True, gradient_checkpointing=False, spec_augment=False)
    encoder.eval()  # transformers' attention dropout is a float fixed at build time: compare without randomness
    g = torch.Generator().manual_seed(0)
    sizes = [16000, 9000, 4000]
    wavs = torch.zeros(3, 16000)
    for row, n in enumerate(sizes):
        wavs[row, :n] = torch.randn(n, generator=g) * 0.1
    together = encoder(wavs, torch.tensor(sizes))
    for row, n in enumerate(sizes):
        alone = encoder(wavs[row : row + 1, :n], torch.tensor([n]))
        frames = int(alone.lengths[0])
        torch.testing.assert_close(together.hidden_states[:, row, :frames], alone.hidden_states[:, 0], atol=1e-5, rtol=1e-4)


def test_frozen_front_end_keeps_no_autograd_graph(tmp_path):
    for encoder in (create("upstream", "tiny"), _group_norm_encoder(tmp_path)):  # WavLM, and HuBERT
        finetune.prepare(encoder, freeze_frontend=True, gradient_checkpointing=False)
        seen = []
        encoder.model.feature_extractor.register_forward_hook(lambda module, args, out: seen.append(out.requires_grad))
        out = encoder(torch.randn(1, 8000) * 0.1, torch.tensor([8000]))
        assert seen == [False], type(encoder.model).__name__  # no activation of the frozen convolutions kept
        assert out.hidden_states.requires_grad  # the transformer above still trains


def test_spec_augment_off_keeps_explicit_masks():
    encoder = create("upstream", "tiny")
    finetune.prepare(encoder, freeze_frontend=True, gradient_checkpointing=False, spec_augment=False)
    config = encoder.model.config
    assert config.mask_time_prob == 0.0 and config.mask_feature_prob == 0.0 and config.apply_spec_augment
    wavs, lengths = torch.randn(1, 8000) * 0.1, torch.tensor([8000])
    frames = int(encoder.model._get_feat_extract_output_lengths(lengths)[0])
    masks = torch.zeros(1, frames, dtype=torch.bool)
    masks[0, :5] = True
    encoder.eval()
    plain = encoder(wavs, lengths).hidden_states
    masked = encoder(wavs, lengths, mask_time_indices=masks).hidden_states
    assert not torch.allclose(plain[-1], masked[-1])


def _frontend_batches(protocol, crop_seconds):
    """A training batch with 3 whole and 2 cropped rows, and the same ids for evaluation."""
    batcher = AudioBatcher(protocol.utterances, protocol.classes, crop_seconds=crop_seconds, seed=0)
    everything = sorted(protocol.utterances)
    limit = crop_seconds * 16000
    sizes = dict(zip(everything, batcher.lengths(everything)))
    ids = [i for i in everything if sizes[i] <= limit][:3] + [i for i in everything if sizes[i] > limit][:2]
    return batcher(ids, train=True), batcher(ids)


def _count_frontend_runs(encoder) -> list[int]:
    """Rows through the front-end's first convolution (the front-end module itself is still
    called when it is handed a cached output)."""
    runs = []
    first = encoder.model.feature_extractor.conv_layers[0]
    first.register_forward_hook(lambda module, args, out: runs.append(out.shape[0]))
    return runs


def _cached_and_fresh(encoder, head, crop_seconds):
    protocol = create("protocol", "synthetic", None, per_class=2)
    finetune.prepare(encoder, freeze_frontend=True, gradient_checkpointing=False, spec_augment=False)
    encoder.eval()  # no dropout: the two paths are compared number for number
    cached = finetune.FineTuneModel(encoder, head, range(encoder.num_layers), frontend_cache={})
    fresh = finetune.FineTuneModel(encoder, head, range(encoder.num_layers))
    train_batch, eval_batch = _frontend_batches(protocol, crop_seconds)
    return cached, fresh, train_batch, eval_batch


def test_cached_front_end_gives_the_features_of_running_it(tmp_path):
    for encoder in (create("upstream", "tiny"), _group_norm_encoder(tmp_path)):
        context = DownstreamContext(encoder.num_layers, encoder.dim, encoder.frame_rate, ("a", "b", "c", "d"),
                                    lambda dim: create("pooling", "mean", dim))
        head = create("downstream", "superb", context)
        cached, fresh, train_batch, eval_batch = _cached_and_fresh(encoder, head, crop_seconds=2.0)
        assert not all(train_batch["whole"]) and any(train_batch["whole"])  # some rows cropped, some whole
        for batch in (train_batch, eval_batch, eval_batch):  # the second eval pass reads the cache
            got, want = cached.encode(batch), fresh.encode(batch)
            assert torch.equal(got.lengths, want.lengths)
            for row, n in enumerate(want.lengths.tolist()):
                torch.testing.assert_close(got.hidden_states[:, row, :n], want.hidden_states[:, row, :n],
                                           atol=1e-5, rtol=1e-4)
        keys = {uid for uid, _, _ in cached.frontend_cache}
        assert keys == set(eval_batch["ids"])  # every whole utterance, and cropped ones only as whole


def test_cached_front_end_runs_once_per_whole_utterance():
    encoder = create("upstream", "tiny")
    context = DownstreamContext(encoder.num_layers, encoder.dim, encoder.frame_rate, ("a", "b", "c", "d"),
                                lambda dim: create("pooling", "mean", dim))
    cached, _, train_batch, eval_batch = _cached_and_fresh(encoder, create("downstream", "superb", context), 2.0)
    runs = _count_frontend_runs(encoder)
    for _ in range(3):
        cached.encode(eval_batch)
    assert sum(runs) == 5  # five utterances, each once
    runs.clear()
    cached.encode(train_batch)  # cropped rows change every epoch: they run again, whole rows do not
    assert sum(runs) == sum(not whole for whole in train_batch["whole"])
    with torch.autocast("cpu", dtype=torch.bfloat16):  # another precision is another entry
        cached.encode(eval_batch)
    assert sum(runs) == sum(not whole for whole in train_batch["whole"]) + 5


def test_a_kept_front_end_output_depends_on_the_utterance_only():
    """Two processes meeting the same utterances in other batches keep identical numbers, so a
    fine-tuning job scores the same whichever jobs ran before it (resumed, or under any executor)."""
    encoder = create("upstream", "tiny")
    context = DownstreamContext(encoder.num_layers, encoder.dim, encoder.frame_rate, ("a", "b", "c", "d"),
                                lambda dim: create("pooling", "mean", dim))
    first, _, _, eval_batch = _cached_and_fresh(encoder, create("downstream", "superb", context), 2.0)
    second = finetune.FineTuneModel(encoder, first.downstream, range(encoder.num_layers), frontend_cache={})
    first.encode(eval_batch)  # all five together
    ids = list(eval_batch["ids"])
    for order in ([4], [3, 0], [2, 1]):  # the same utterances, met in other batches and orders
        rows = torch.tensor(order)
        second.encode({**eval_batch, "ids": [ids[r] for r in order], "wavs": eval_batch["wavs"][rows],
                       "wav_lengths": eval_batch["wav_lengths"][rows], "whole": [eval_batch["whole"][r] for r in order]})
    assert first.frontend_cache.keys() == second.frontend_cache.keys()
    assert all(torch.equal(first.frontend_cache[k], second.frontend_cache[k]) for k in first.frontend_cache)
