"""transformers upstreams: every family's hidden states, padding, offline loading."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from serbench.api.errors import SerbenchError
from serbench.api.protocol import Utterance
from serbench.run.features import extract
from serbench.run.registry import create

from conftest import run_cli
from lookalike import tiny_wav
from tiny_checkpoints import FAMILIES, save_checkpoint


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    return {family: save_checkpoint(root / family, family) for family in FAMILIES}


@pytest.fixture(scope="module")
def utterances(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    out = []
    for k, seconds in enumerate((0.5, 1.3, 0.9, 2.0)):
        tiny_wav(root / f"{k}.wav", seed=k, seconds=seconds)
        out.append(Utterance(id=str(k), path=root / f"{k}.wav", label="a", speaker="s"))
    return out


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_hidden_state_with_lengths(checkpoints, family):
    upstream = create("upstream", f"hf:{checkpoints[family]}")
    assert upstream.num_layers == 3 and upstream.dim == 32 and upstream.frame_rate == 50.0
    wavs = torch.randn(2, 16000) * 0.1
    out = upstream(wavs, torch.tensor([16000, 9000]))
    assert out.hidden_states.shape[:2] == (3, 2) and out.hidden_states.shape[-1] == 32
    # the convolutional front-end's valid frames: 49 for 16000 samples, 27 for 9000
    assert out.lengths.tolist() == [49, 27]
    assert upstream.batch_safe == (family in ("wavlm_layer", "wav2vec2_layer"))
    assert upstream.fingerprint().startswith(f"dir:{checkpoints[family].resolve()}@sha256:")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_batched_extraction_equals_one_by_one(checkpoints, utterances, family):
    upstream = create("upstream", f"hf:{checkpoints[family]}")
    layers = tuple(range(upstream.num_layers))
    together, _ = extract(upstream, utterances, torch.device("cpu"), layers, dtype="float32")
    for u in utterances:
        alone, _ = extract(upstream, [u], torch.device("cpu"), layers, dtype="float32")
        np.testing.assert_allclose(together[u.id], alone[u.id], atol=2e-4, rtol=1e-4)
    if upstream.batch_safe:  # and padding really happened in one forward pass
        wavs = torch.zeros(2, 32000)
        wavs[0, :8000] = torch.randn(8000) * 0.1
        wavs[1] = torch.randn(32000) * 0.1
        batch = upstream(wavs, torch.tensor([8000, 32000]))
        single = upstream(wavs[:1, :8000], torch.tensor([8000]))
        n = int(batch.lengths[0])
        torch.testing.assert_close(batch.hidden_states[:, 0, :n], single.hidden_states[:, 0], atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_an_utterance_shorter_than_the_receptive_field_gives_one_frame(checkpoints, family):
    """1 and 200 samples raised in the front-end's convolutions (or gave -1 frames): padded with
    zeros to the receptive field they give one frame, the same alone, in a batch and through
    the fine-tuning front-end."""
    upstream = create("upstream", f"hf:{checkpoints[family]}")
    assert upstream.min_samples == 400  # wav2vec 2.0's front-end: 25 ms
    lengths = [1, 200, 399, 400, 16000]
    wavs = torch.zeros(len(lengths), 16000)
    for row, n in enumerate(lengths):
        wavs[row, :n] = torch.randn(n) * 0.1
    out = upstream(wavs, torch.tensor(lengths))
    assert out.lengths.tolist() == [1, 1, 1, 1, 49] and torch.isfinite(out.hidden_states).all()
    for row in range(3):
        alone = upstream(wavs[row : row + 1, : lengths[row]], torch.tensor(lengths[row : row + 1])).hidden_states
        torch.testing.assert_close(alone[:, 0, :1], out.hidden_states[:, row, :1], atol=2e-4, rtol=1e-4)
    fronts = upstream.frontend(wavs[:2, :200], torch.tensor(lengths[:2]))
    assert [f.shape[-1] for f in fronts] == [1, 1]


def test_input_normalisation_follows_the_checkpoint(checkpoints):
    with_norm = create("upstream", f"hf:{checkpoints['wavlm_layer']}")
    without = create("upstream", f"hf:{checkpoints['hubert_group']}")
    assert with_norm.do_normalize and not without.do_normalize
    wav = torch.randn(1, 8000) * 0.1
    scaled = with_norm(wav * 10, torch.tensor([8000])).hidden_states
    torch.testing.assert_close(with_norm(wav, torch.tensor([8000])).hidden_states, scaled, atol=1e-4, rtol=1e-4)


def test_fingerprint_follows_the_weights(checkpoints, tmp_path):
    copy = shutil.copytree(checkpoints["wavlm_layer"], tmp_path / "copy")
    other = save_checkpoint(tmp_path / "other", "wavlm_layer", seed=1)
    a = create("upstream", f"hf:{checkpoints['wavlm_layer']}").fingerprint().split("@")[1]
    assert a == create("upstream", f"hf:{copy}").fingerprint().split("@")[1]
    assert a != create("upstream", f"hf:{other}").fingerprint().split("@")[1]


def test_hub_cache_snapshot_is_used_and_its_revision_recorded(checkpoints, tmp_path):
    """A checkpoint in the Hugging Face cache layout loads by repo id, offline."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--microsoft--wavlm-large"
    shutil.copytree(checkpoints["wavlm_layer"], repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    script = "import serbench; print(serbench.create('upstream', 'wavlm_large').fingerprint())"
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**__import__("os").environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"microsoft/wavlm-large@{revision}"


@pytest.mark.e2e
def test_missing_weights_say_how_to_get_them(tmp_path):
    done = run_cli("run", "--upstream", "wavlm_large", "--downstream", "superb", "--protocol", "synthetic",
                   "--out", str(tmp_path / "runs"), env={"HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HOME": str(tmp_path)})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "weights for microsoft/wavlm-large are not in the local Hugging Face cache" in done.stderr
    assert "hf download microsoft/wavlm-large" in done.stderr and "--upstream hf:/path/to/checkpoint" in done.stderr
    assert not (tmp_path / "runs").exists()  # nothing written for a run that could not start


def test_a_folder_that_is_not_a_checkpoint(tmp_path):
    with pytest.raises(SerbenchError, match=rf"{tmp_path}: no config.json"):
        create("upstream", f"hf:{tmp_path}")
