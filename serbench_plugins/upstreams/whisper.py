"""Whisper's encoder through transformers (``whisper_*``, ``whisper:<id or folder>``, ``tiny_whisper``).

Whisper's encoder only takes 30-s windows: its log-mel input is always padded to 3,000 frames
(transformers refuses any other length, and the positional embeddings are fixed at 1,500
output frames), and it has no attention mask. serbench keeps that input as Whisper was
trained: it does **not** truncate the input features. Instead it **crops the encoder's
output** to the frames of the real audio, ``ceil(samples / 320)`` at 50 Hz (the log-mel hop
is 160 samples and the second convolution has stride 2), so that pooling, layer weighting
and every head see only frames of speech: a 1-s utterance gives 50 frames, not 1,500 of
which 1,450 are padding. The real frames are still computed with the padded window in
attention's view, as in every Whisper model; that is the checkpoint's own behaviour.

Longer utterances are cut into consecutive 30-s windows, each encoded on its own, and their
cropped outputs joined in order (serbench's choice; Whisper itself transcribes long audio
window by window). Each window is padded and normalised alone (its log-mel's maximum sets the
floor, as in Whisper's feature extractor), so an utterance's features never depend on its
batch-mates. Hidden states: the convolutional front-end with positions, then every layer (the
last after the final layer norm): ``encoder_layers + 1`` states for the weighted sum.

Fine-tuning (``-o upstream.finetune=true``) trains the encoder; ``freeze_frontend`` freezes its
two convolutions, ``gradient_checkpointing`` uses transformers' own. LayerDrop is off (a
skipped layer would return fewer hidden states), and ``upstream.spec_augment`` has no effect:
SpecAugment lives in WhisperModel, not in its encoder.

Weights come from the local Hugging Face cache or a directory (never downloaded at run time);
the log-mel settings from the checkpoint's ``preprocessor_config.json`` (else 16 kHz with the
model's mel-bin count).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from serbench.api.checkpoints import locate
from serbench.api.errors import SerbenchError
from serbench.api.upstream import Upstream, UpstreamOutput

HOP = 160  # log-mel hop in samples (10 ms at 16 kHz)
STRIDE = 2  # the encoder's second convolution: 20 ms per output frame


class WhisperUpstream(Upstream):
    """Whisper's encoder: every hidden state, cropped to the frames of each utterance's audio."""

    precisions = ("fp32", "bf16")  # a neural forward: -o upstream.precision=bf16 autocasts it

    def __init__(self, encoder: nn.Module, extractor, fingerprint: str):
        super().__init__()
        encoder.layerdrop = 0.0  # a skipped layer would return fewer hidden states (see serbench.run.finetune.prepare)
        self.model = encoder  # named as in the hf upstream: fine-tuning finds it there (checkpointing, freezing)
        self.extractor = extractor
        self._fingerprint = fingerprint
        config = encoder.config
        self.window = config.max_source_positions * STRIDE * HOP  # samples per 30-s window
        self.num_layers = config.encoder_layers + 1
        self.dim = config.d_model
        self.frame_rate = self.sample_rate / (HOP * STRIDE)

    def frames(self, samples: int) -> int:
        """Output frames that hold audio of a window of ``samples`` samples (at least one)."""
        return max(1, min(math.ceil(samples / (HOP * STRIDE)), self.window // (HOP * STRIDE)))

    def frontend_parameters(self) -> list[nn.Parameter]:
        """The two convolutions, frozen by default when fine-tuning."""
        return list(self.model.conv1.parameters()) + list(self.model.conv2.parameters())

    def log_mel(self, windows: list[torch.Tensor]) -> torch.Tensor:
        """Whisper's log-mel input [W, mels, 3000] for waveform windows of at most 30 s."""
        arrays = [w.detach().float().cpu().numpy().astype(np.float32) for w in windows]
        features = self.extractor(arrays, sampling_rate=self.sample_rate, return_tensors="pt",
                                  padding="max_length").input_features
        parameter = next(self.model.parameters())
        return features.to(device=parameter.device, dtype=parameter.dtype)

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor) -> UpstreamOutput:
        windows, owners = [], []  # owners[k]: (row, valid output frames) of window k
        for row, n in enumerate(lengths.tolist()):
            for start in range(0, max(int(n), 1), self.window):
                piece = wavs[row, start : min(int(n), start + self.window)]
                windows.append(piece)
                owners.append((row, self.frames(piece.shape[-1])))
        out = self.model(self.log_mel(windows), output_hidden_states=True)
        states = torch.stack(out.hidden_states)  # [layers, W, 1500, D]
        per_row: list[list[torch.Tensor]] = [[] for _ in range(len(wavs))]
        for k, (row, count) in enumerate(owners):
            per_row[row].append(states[:, k, :count])
        joined = [torch.cat(parts, dim=1) for parts in per_row]
        frames = torch.tensor([j.shape[1] for j in joined], device=wavs.device)
        width = int(frames.max())
        hidden = torch.stack([nn.functional.pad(j, (0, 0, 0, width - j.shape[1])) for j in joined], dim=1)
        return UpstreamOutput(hidden, frames)

    def fingerprint(self) -> str:
        return self._fingerprint


def _extractor(folder, mel_bins: int):
    from transformers import WhisperFeatureExtractor

    if (folder / "preprocessor_config.json").is_file():
        extractor = WhisperFeatureExtractor.from_pretrained(folder, local_files_only=True)
    else:
        extractor = WhisperFeatureExtractor(feature_size=mel_bins)
    if extractor.feature_size != mel_bins or extractor.sampling_rate != Upstream.sample_rate:
        raise SerbenchError(f"{folder}: preprocessor_config.json gives {extractor.feature_size} mel bins at "
                            f"{extractor.sampling_rate} Hz; the model takes {mel_bins} at 16000 Hz")
    return extractor


def load(target: str) -> WhisperUpstream:
    """A Whisper checkpoint (repo id in the local cache, or a folder): its encoder alone."""
    from transformers import WhisperConfig, WhisperModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    folder, fingerprint = locate(target, scheme="whisper")
    config = WhisperConfig.from_pretrained(folder, local_files_only=True)
    if config.model_type != "whisper":
        raise SerbenchError(f"{target}: a {config.model_type} checkpoint, not Whisper (use hf:{target} for "
                            "wav2vec2-style encoders)")
    encoder = WhisperModel.from_pretrained(folder, local_files_only=True).get_encoder().eval()
    return WhisperUpstream(encoder, _extractor(folder, config.num_mel_bins), fingerprint)


def make_tiny(depth: int = 2, dim: int = 32, heads: int = 2, mel_bins: int = 80, seed: int = 0) -> WhisperUpstream:
    """A small randomly initialised Whisper encoder (real transformers code, no weights)."""
    from transformers import WhisperConfig, WhisperFeatureExtractor
    from transformers.models.whisper.modeling_whisper import WhisperEncoder  # the encoder alone: no decoder built

    config = WhisperConfig(d_model=dim, encoder_layers=depth, encoder_attention_heads=heads, encoder_ffn_dim=dim * 2,
                           num_mel_bins=mel_bins)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = WhisperEncoder(config).eval()
    return WhisperUpstream(encoder, WhisperFeatureExtractor(feature_size=mel_bins),
                          f"tiny-whisper-l{depth}-d{dim}-h{heads}-m{mel_bins}-seed{seed}")
