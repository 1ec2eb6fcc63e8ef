"""Tiny randomly initialised checkpoints of each transformers family, saved like real ones."""

from __future__ import annotations

from pathlib import Path

import torch

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
             conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
FAMILIES = {
    # name: (config class, model class, extra config, feature-extractor settings)
    "wavlm_layer": ("WavLMConfig", "WavLMModel", dict(feat_extract_norm="layer", do_stable_layer_norm=True, num_buckets=32), (True, True)),
    "wavlm_group": ("WavLMConfig", "WavLMModel", dict(feat_extract_norm="group", num_buckets=32), (False, True)),
    "hubert_group": ("HubertConfig", "HubertModel", dict(feat_extract_norm="group"), (False, False)),
    "wav2vec2_layer": ("Wav2Vec2Config", "Wav2Vec2Model", dict(feat_extract_norm="layer", do_stable_layer_norm=True), (True, True)),
}


def save_checkpoint(folder: Path, family: str, seed: int = 0) -> Path:
    import transformers

    config_name, model_name, extra, (mask, normalize) = FAMILIES[family]
    config = getattr(transformers, config_name)(**SMALL, **extra)
    torch.manual_seed(seed)
    getattr(transformers, model_name)(config).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(return_attention_mask=mask, do_normalize=normalize).save_pretrained(folder)
    return folder


def save_whisper_checkpoint(folder: Path, seed: int = 0, mel_bins: int = 80) -> Path:
    """A tiny random Whisper (encoder and a one-layer decoder) with its feature extractor."""
    import transformers

    config = transformers.WhisperConfig(d_model=32, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64,
                                        decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=64,
                                        num_mel_bins=mel_bins, vocab_size=51865)
    torch.manual_seed(seed)
    transformers.WhisperModel(config).save_pretrained(folder)
    transformers.WhisperFeatureExtractor(feature_size=mel_bins).save_pretrained(folder)
    return folder
