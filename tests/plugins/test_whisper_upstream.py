"""Whisper's encoder: every layer, 30-s padding cropped away, long audio in windows, local weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from serbench.api.blocks import MeanPooling
from serbench.api.errors import SerbenchError
from serbench.run.registry import create

from conftest import run_cli
from tiny_checkpoints import save_checkpoint, save_whisper_checkpoint

RATE = 16000


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_whisper_checkpoint(tmp_path_factory.mktemp("whisper") / "tiny")


def _reference_states(folder, wav: np.ndarray) -> torch.Tensor:
    """Every hidden state of one utterance as transformers computes it, 30-s padding included:
    [layers, 1500, D]. Independent of serbench: the checkpoint's own extractor and model."""
    from transformers import WhisperFeatureExtractor, WhisperModel

    extractor = WhisperFeatureExtractor.from_pretrained(folder)
    features = extractor([wav], sampling_rate=RATE, return_tensors="pt").input_features
    encoder = WhisperModel.from_pretrained(folder).get_encoder().eval()
    with torch.no_grad():
        return torch.stack(encoder(features, output_hidden_states=True).hidden_states)[:, 0]


def test_loads_a_folder_with_every_layer_and_50_frames_a_second(checkpoint):
    upstream = create("upstream", f"whisper:{checkpoint}")
    assert (upstream.num_layers, upstream.dim, upstream.frame_rate) == (3, 32, 50.0)  # 2 layers + the input embedding
    assert upstream.fingerprint().startswith(f"dir:{checkpoint.resolve()}@sha256:")


def test_a_short_utterance_is_cropped_to_its_own_frames(checkpoint):
    """1 s of audio: 50 frames, equal to the first 50 of transformers' 1,500; its mean-pooled
    vector is the mean over those 50 alone, far from the mean over the padded window."""
    upstream = create("upstream", f"whisper:{checkpoint}")
    wav = (np.random.default_rng(0).standard_normal(RATE) * 0.1).astype(np.float32)
    with torch.no_grad():
        out = upstream(torch.from_numpy(wav)[None], torch.tensor([RATE]))
    reference = _reference_states(checkpoint, wav)
    assert reference.shape[1] == 1500 and int(out.lengths[0]) == 50 == out.hidden_states.shape[2]
    torch.testing.assert_close(out.hidden_states[:, 0], reference[:, :50], atol=1e-5, rtol=1e-5)
    mask = torch.arange(out.hidden_states.shape[2])[None] < out.lengths[:, None]
    pooled = MeanPooling(upstream.dim)(out.hidden_states[-1], mask)
    torch.testing.assert_close(pooled[0], reference[-1, :50].mean(0), atol=1e-5, rtol=1e-5)
    padded_mean = reference[-1].mean(0)  # what pooling over the whole 30-s window would give
    assert (pooled[0] - padded_mean).norm() > 0.1 * padded_mean.norm()


def test_batched_equals_one_by_one_and_long_audio_is_windowed():
    upstream = create("upstream", "tiny_whisper")
    sizes = [4000, 8001, 31 * RATE]  # the last: one full 30-s window and 1 s more
    g = torch.Generator().manual_seed(1)
    wavs = [torch.randn(n, generator=g) * 0.1 for n in sizes]
    padded = torch.zeros(len(wavs), max(sizes))
    for row, wav in enumerate(wavs):
        padded[row, : wav.numel()] = wav
    with torch.no_grad():
        batched = upstream(padded, torch.tensor(sizes))
        assert batched.lengths.tolist() == [math.ceil(n / 320) for n in sizes] == [13, 26, 1550]
        for row, wav in enumerate(wavs):
            single = upstream(wav[None], torch.tensor([sizes[row]]))
            n = int(batched.lengths[row])
            torch.testing.assert_close(batched.hidden_states[:, row, :n], single.hidden_states[:, 0], atol=1e-5, rtol=1e-5)
        # the second window is the last second encoded alone
        tail = upstream(wavs[2][30 * RATE:][None], torch.tensor([RATE]))
    torch.testing.assert_close(batched.hidden_states[:, 2, 1500:1550], tail.hidden_states[:, 0], atol=1e-5, rtol=1e-5)


@pytest.mark.e2e
def test_missing_weights_say_how_to_get_them(tmp_path):
    done = run_cli("check-plugin", "upstream", "whisper_small",
                   env={"HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"})
    assert "Traceback" not in done.stderr
    text = done.stdout + done.stderr
    assert "weights for openai/whisper-small are not in the local Hugging Face cache" in text
    assert "hf download openai/whisper-small" in text and "--upstream whisper:/path/to/checkpoint" in text


def test_a_wav2vec2_checkpoint_is_not_taken_for_whisper(tmp_path):
    folder = save_checkpoint(tmp_path / "w2v", "wav2vec2_layer")
    with pytest.raises(SerbenchError, match=r"a wav2vec2 checkpoint, not Whisper"):
        create("upstream", f"whisper:{folder}")


def test_fine_tuning_trains_the_layers_and_keeps_the_frozen_frontend():
    from serbench.run import finetune

    upstream = create("upstream", "tiny_whisper")
    finetune.prepare(upstream, freeze_frontend=True, gradient_checkpointing=True)
    assert getattr(upstream.model, "is_activation_checkpointing", None) or upstream.model.is_gradient_checkpointing
    out = upstream(torch.randn(2, 8000) * 0.1, torch.tensor([8000, 4000]))
    mask = (torch.arange(out.hidden_states.shape[2])[None] < out.lengths[:, None]).float()
    (out.hidden_states[-1] * mask[..., None]).sum().backward()
    assert all(p.grad is None for p in upstream.frontend_parameters())
    assert upstream.model.layers[0].fc1.weight.grad.abs().sum() > 0
