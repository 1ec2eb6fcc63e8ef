"""``tiny``: a small randomly initialised WavLM built from a transformers config.

For tests and smoke runs: it exercises the real transformers code path (convolutional
front-end, relative-position attention, padding masks) in seconds, with no weights to fetch.
No dropout on attention weights (version 2): when it is fine-tuned on a CPU, drawing a mask
over every batch x head x frame x frame weight cost more than the attention itself (py-spy:
13 of 120 s of the GMP-ATL demo); its other dropouts are transformers' defaults. Frozen
features do not change (no dropout in evaluation).
"""

from __future__ import annotations

import torch

from serbench_plugins.upstreams.hf import TransformersEncoder


def make_tiny(depth: int = 2, dim: int = 32, heads: int = 2, seed: int = 0) -> TransformersEncoder:
    from transformers import WavLMConfig, WavLMModel  # slow import: only when built

    config = WavLMConfig(
        hidden_size=dim,
        num_hidden_layers=depth,
        num_attention_heads=heads,
        intermediate_size=dim * 2,
        conv_dim=(dim,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        attention_dropout=0.0,
        num_buckets=32,
        max_bucket_distance=200,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = WavLMModel(config).eval()
    fingerprint = f"tiny-wavlm-l{depth}-d{dim}-h{heads}-seed{seed}"
    return TransformersEncoder(model, fingerprint, do_normalize=True, pass_mask=True)
