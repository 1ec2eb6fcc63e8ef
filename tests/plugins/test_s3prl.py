"""The s3prl backend (optional extra): runs where espnet-s3prl is installed (torch 2.11 +
torchaudio 2.11), and elsewhere checks the message that says how to get it."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from serbench.api.errors import SerbenchError
from serbench.run.registry import create

from tiny_checkpoints import save_checkpoint

HAS_S3PRL = importlib.util.find_spec("s3prl") is not None
needs_s3prl = pytest.mark.skipif(not HAS_S3PRL, reason="s3prl is not installed here (extra serbench[s3prl], torch 2.11 env)")


@pytest.mark.skipif(HAS_S3PRL, reason="s3prl is installed here")
def test_without_s3prl_the_error_says_how_to_install_it():
    with pytest.raises(SerbenchError, match=r"s3prl:fbank needs s3prl: pip install 'serbench\[s3prl\]'"):
        create("upstream", "s3prl:fbank")


@needs_s3prl
@pytest.mark.parametrize("name", ["fbank", "mfcc"])
def test_baseline_features_through_s3prl(name):
    upstream = create("upstream", f"s3prl:{name}")
    wavs = torch.randn(2, 16000) * 0.1
    out = upstream(wavs, torch.tensor([16000, 8000]))
    assert out.hidden_states.shape[0] == upstream.num_layers >= 1
    assert out.hidden_states.shape[-1] == upstream.dim
    assert upstream.frame_rate == 100.0
    assert abs(int(out.lengths[0]) - 100) <= 2 and abs(int(out.lengths[1]) - 50) <= 2


@needs_s3prl
def test_local_hubert_through_s3prl(tmp_path):
    folder = save_checkpoint(tmp_path / "hubert", "hubert_group")
    upstream = create("upstream", "s3prl:hf_hubert_custom", path_or_url=str(folder))
    out = upstream(torch.randn(1, 16000) * 0.1, torch.tensor([16000]))
    assert out.hidden_states.shape[0] == upstream.num_layers == 3
    assert upstream.dim == 32 and upstream.frame_rate == 50.0
    assert upstream.fingerprint() == f"s3prl:hf_hubert_custom@{folder}"


@needs_s3prl
def test_unknown_hub_name():
    with pytest.raises(SerbenchError, match=r"s3prl:fbnak: not in the s3prl hub \(did you mean 'fbank'\?\)"):
        create("upstream", "s3prl:fbnak")
