"""``tiny``: a small randomly initialised WavLM built from a transformers config.

For tests and smoke runs: it exercises the real transformers code path (convolutional
front-end, relative-position attention, padding masks) in seconds, with no weights to fetch.
"""

from __future__ import annotations

import warnings

import torch

from serbench.hookspecs import hookimpl
from serbench.specs import Param, Spec
from serbench.upstream import Upstream, UpstreamOutput


def normalise(wavs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance over each utterance's valid samples; padding stays 0."""
    mask = torch.arange(wavs.shape[-1], device=wavs.device) < lengths[:, None]
    n = lengths[:, None].to(wavs.dtype)
    mean = (wavs * mask).sum(-1, keepdim=True) / n
    var = (((wavs - mean) * mask) ** 2).sum(-1, keepdim=True) / n
    return (wavs - mean) / torch.sqrt(var + 1e-7) * mask


class TinyWavLM(Upstream):
    frame_rate = 50.0

    def __init__(self, layers: int = 2, dim: int = 32, heads: int = 2, seed: int = 0):
        super().__init__()
        from transformers import WavLMConfig, WavLMModel  # slow import: only when built

        config = WavLMConfig(
            hidden_size=dim,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=dim * 2,
            conv_dim=(dim,) * 7,
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
            feat_extract_norm="layer",
            do_stable_layer_norm=True,
            num_buckets=32,
            max_bucket_distance=200,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = WavLMModel(config)
        self.model.eval()
        self.num_layers = layers + 1
        self.dim = dim
        self.seed = seed

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor) -> UpstreamOutput:
        mask = (torch.arange(wavs.shape[-1], device=wavs.device) < lengths[:, None]).long()
        with warnings.catch_warnings():  # torch's notice about transformers' mask types
            warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")
            out = self.model(normalise(wavs, lengths), attention_mask=mask, output_hidden_states=True)
        frames = self.model._get_feat_extract_output_lengths(lengths)
        return UpstreamOutput(torch.stack(out.hidden_states), frames)

    def fingerprint(self) -> str:
        c = self.model.config
        return f"tiny-wavlm-l{c.num_hidden_layers}-d{c.hidden_size}-h{c.num_attention_heads}-seed{self.seed}"


@hookimpl
def register_upstreams() -> list[Spec]:
    return [
        Spec(
            name="tiny",
            factory=TinyWavLM,
            summary="small random WavLM (transformers), for tests and smoke runs",
            params=(
                Param("layers", int, 2, "transformer layers"),
                Param("dim", int, 32, "hidden width"),
                Param("heads", int, 2, "attention heads"),
                Param("seed", int, 0, "seed of the random initialisation"),
            ),
            version="1",
        )
    ]
