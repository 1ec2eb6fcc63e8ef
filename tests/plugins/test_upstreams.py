"""fbank and tiny: shapes, frame counts, and batched extraction equal to one by one."""

import numpy as np
import pytest
import torch

from serbench.run.registry import create
from serbench_plugins.upstreams.fbank import mel_filterbank


def _batch(seed=0, sizes=(8000, 16000, 11111)):
    g = torch.Generator().manual_seed(seed)
    wavs = [torch.randn(n, generator=g) * 0.1 for n in sizes]
    padded = torch.zeros(len(wavs), max(sizes))
    for i, w in enumerate(wavs):
        padded[i, : w.numel()] = w
    return wavs, padded, torch.tensor(sizes)


@pytest.mark.parametrize("name", ["fbank", "tiny"])
def test_batched_equals_one_by_one(name):
    upstream = create("upstream", name).eval()
    wavs, padded, lengths = _batch()
    with torch.inference_mode():
        batched = upstream(padded, lengths)
        assert batched.hidden_states.shape[:2] == (upstream.num_layers, 3)
        assert batched.hidden_states.shape[-1] == upstream.dim
        for i, wav in enumerate(wavs):
            single = upstream(wav[None], lengths[i : i + 1])
            n = int(batched.lengths[i])
            assert n == single.hidden_states.shape[2]
            torch.testing.assert_close(batched.hidden_states[:, i, :n], single.hidden_states[:, 0], atol=1e-4, rtol=1e-4)


def test_fbank_frames_are_25ms_windows_every_10ms():
    upstream = create("upstream", "fbank")
    out = upstream(torch.zeros(1, 16000), torch.tensor([16000]))
    assert out.lengths.tolist() == [1 + (16000 - 400) // 160] == [98]
    assert upstream.frame_rate == 100.0


def test_fbank_puts_a_tone_in_the_right_mel_bin():
    upstream = create("upstream", "fbank")
    t = torch.arange(16000) / 16000
    out = upstream(torch.sin(2 * np.pi * 1000 * t)[None], torch.tensor([16000]))
    peak = int(out.hidden_states[0, 0].mean(0).argmax())
    filters = mel_filterbank(80)
    bin_1k = int(round(1000 / 8000 * 256))
    assert peak == int(filters[bin_1k].argmax())


def test_tiny_is_seeded_and_returns_every_hidden_state():
    a, b = create("upstream", "tiny", seed=3), create("upstream", "tiny", seed=3)
    c = create("upstream", "tiny", seed=4, depth=3)
    _, padded, lengths = _batch()
    with torch.inference_mode():
        torch.testing.assert_close(a(padded, lengths).hidden_states, b(padded, lengths).hidden_states)
        assert c(padded, lengths).hidden_states.shape[0] == 4  # projection + 3 layers
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert a.frame_rate == 50.0
