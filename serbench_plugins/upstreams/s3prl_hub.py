"""``s3prl:<name>``: every upstream in the s3prl hub, through the maintained fork espnet-s3prl.

An optional extra (``pip install 'serbench[s3prl]'``): s3prl needs torchaudio, so that
environment runs torch 2.11 with torchaudio 2.11. Weights come from s3prl's own cache or
``path_or_url`` (e.g. ``s3prl:hf_hubert_custom -o upstream.path_or_url=/dir``); the baseline
feature extractors ``fbank`` and ``mfcc`` need none.
"""

from __future__ import annotations

import torch

from serbench.api.errors import SerbenchError
from serbench.api.upstream import Upstream, UpstreamOutput

MISSING = (
    "s3prl:{name} needs s3prl: pip install 'serbench[s3prl]' (the espnet-s3prl package, which requires "
    "torch 2.11 and torchaudio 2.11 in the same environment)"
)


class S3PRLEncoder(Upstream):
    precisions = ("fp32", "bf16")  # a neural forward: -o upstream.precision=bf16 autocasts it

    def __init__(self, name: str, path_or_url: str = "", normalize: bool = False):
        super().__init__()
        try:
            from s3prl.nn import S3PRLUpstream
        except ImportError:
            raise SerbenchError(MISSING.format(name=name)) from None
        if name not in S3PRLUpstream.available_names():
            from serbench.api.errors import did_you_mean

            raise SerbenchError(f"s3prl:{name}: not in the s3prl hub{did_you_mean(name, S3PRLUpstream.available_names())}")
        try:
            self.model = S3PRLUpstream(name, path_or_url=path_or_url or None, normalize=normalize)
        except (OSError, ValueError, RuntimeError) as exc:
            raise SerbenchError(f"s3prl:{name}: cannot load ({type(exc).__name__}: {exc})") from None
        self.model.eval()
        self.name = name
        self.source = path_or_url
        self.num_layers = self.model.num_layers
        sizes = set(self.model.hidden_sizes)
        if len(sizes) != 1:
            raise SerbenchError(f"s3prl:{name}: hidden states of different widths {sorted(sizes)} are not supported")
        self.dim = sizes.pop()
        self.frame_rate = self.sample_rate / self.model.downsample_rates[-1]

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor) -> UpstreamOutput:
        states, state_lengths = self.model(wavs, lengths)
        frames = min(s.shape[1] for s in states)
        stacked = torch.stack([s[:, :frames] for s in states])
        return UpstreamOutput(stacked, torch.clamp(state_lengths[-1], max=frames))

    def fingerprint(self) -> str:
        return f"s3prl:{self.name}" + (f"@{self.source}" if self.source else "")


def make(name: str, path_or_url: str, normalize: bool) -> S3PRLEncoder:
    return S3PRLEncoder(name, path_or_url, normalize)
