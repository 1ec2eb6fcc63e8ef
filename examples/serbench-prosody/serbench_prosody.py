"""A third-party serbench upstream: three hand-made frame features, no weights.

Every 10 ms, over a 25 ms window of the 16 kHz waveform: log energy, zero-crossing rate and
spectral centroid (in kHz). Hidden state 0 holds them; hidden state 1 their first differences
over time (0 at the first frame), so a downstream's layer weighting has two "layers" to weigh.
Only an utterance's own samples are framed, and its frames beyond its length are zero, so
batched and one-by-one extraction agree (``serbench check-plugin upstream prosody``).

    pip install ./examples/serbench-prosody
    serbench run --upstream prosody --downstream superb --protocol synthetic
"""

from __future__ import annotations

import torch

from serbench.api import Param, Spec, UpstreamMeta, hookimpl
from serbench.api.upstream import Upstream, UpstreamOutput

WINDOW, HOP = 400, 160  # 25 ms and 10 ms at 16 kHz


class Prosody(Upstream):
    num_layers = 2
    dim = 3
    frame_rate = 100.0

    def __init__(self, floor: float):
        super().__init__()
        self.floor = floor

    def frames(self, wav: torch.Tensor) -> torch.Tensor:
        """[T, 3] features of one unpadded waveform (at least one frame)."""
        if wav.numel() < WINDOW:
            wav = torch.nn.functional.pad(wav, (0, WINDOW - wav.numel()))
        windows = wav.unfold(0, WINDOW, HOP)  # [T, WINDOW]
        energy = torch.log(windows.pow(2).mean(dim=1) + self.floor)
        signs = torch.signbit(windows)
        zcr = (signs[:, 1:] != signs[:, :-1]).float().mean(dim=1)
        power = torch.fft.rfft(windows * torch.hann_window(WINDOW, device=wav.device), dim=1).abs().pow(2)
        freqs = torch.linspace(0.0, 8.0, power.shape[1], device=wav.device)  # kHz
        centroid = (power * freqs).sum(dim=1) / (power.sum(dim=1) + self.floor)
        return torch.stack([energy, zcr, centroid], dim=1)

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor) -> UpstreamOutput:
        per_utterance = [self.frames(wav[: int(n)].float()) for wav, n in zip(wavs, lengths)]
        counts = torch.tensor([f.shape[0] for f in per_utterance], dtype=torch.long)
        out = wavs.new_zeros((2, len(per_utterance), int(counts.max()), self.dim), dtype=torch.float32)
        for b, feats in enumerate(per_utterance):
            deltas = torch.cat([feats.new_zeros(1, self.dim), feats[1:] - feats[:-1]])
            out[0, b, : len(feats)] = feats
            out[1, b, : len(feats)] = deltas
        return UpstreamOutput(hidden_states=out, lengths=counts)

    def fingerprint(self) -> str:
        return f"prosody-{WINDOW}-{HOP}-floor{self.floor!r}"


@hookimpl
def register_upstreams():
    return [Spec(name="prosody", factory=Prosody,
                 summary="log energy, zero-crossing rate, spectral centroid (25 ms / 10 ms) and their deltas (example plugin)",
                 params=(Param("floor", float, 1e-8, "added before each log and division", bounds="> 0"),),
                 meta=UpstreamMeta(trainable=False))]
