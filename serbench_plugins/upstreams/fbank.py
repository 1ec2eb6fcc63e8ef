"""``fbank``: log-mel filterbank features, the no-pretraining baseline (pure torch)."""

from __future__ import annotations

import torch

from serbench.api.upstream import Upstream, UpstreamOutput

WINDOW = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms
N_FFT = 512


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def mel_filterbank(n_mels: int, n_fft: int = N_FFT, sample_rate: int = 16_000) -> torch.Tensor:
    """HTK-style triangular filters ``[n_fft // 2 + 1, n_mels]``, 20 Hz to Nyquist."""
    low, high = _hz_to_mel(torch.tensor(20.0)), _hz_to_mel(torch.tensor(sample_rate / 2))
    edges_mel = torch.linspace(float(low), float(high), n_mels + 2)
    edges_hz = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    bins = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    left, centre, right = edges_hz[:-2], edges_hz[1:-1], edges_hz[2:]
    rising = (bins[:, None] - left) / (centre - left)
    falling = (right - bins[:, None]) / (right - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0)


class Fbank(Upstream):
    """80-bin log-mel, 25 ms Hann window, 10 ms hop, no dither, edges snipped (a frame is
    kept only when it lies wholly inside the utterance)."""

    num_layers = 1
    frame_rate = 100.0

    def __init__(self, n_mels: int = 80):
        super().__init__()
        self.dim = n_mels
        self.register_buffer("window", torch.hann_window(WINDOW, periodic=False), persistent=False)
        self.register_buffer("filters", mel_filterbank(n_mels), persistent=False)

    @staticmethod
    def frame_lengths(lengths: torch.Tensor) -> torch.Tensor:
        return torch.clamp((lengths - WINDOW) // HOP + 1, min=1)

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor) -> UpstreamOutput:
        if wavs.shape[-1] < WINDOW:
            wavs = torch.nn.functional.pad(wavs, (0, WINDOW - wavs.shape[-1]))
        frames = wavs.unfold(-1, WINDOW, HOP) * self.window  # [B, T, WINDOW]
        power = torch.fft.rfft(frames, n=N_FFT).abs().pow(2)
        logmel = torch.log(power @ self.filters + 1e-6)
        return UpstreamOutput(logmel.unsqueeze(0), self.frame_lengths(lengths))

    def fingerprint(self) -> str:
        return f"fbank-{self.dim}-hann{WINDOW}-hop{HOP}"
