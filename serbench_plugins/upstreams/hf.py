"""Self-supervised encoders through transformers: WavLM, HuBERT, wav2vec 2.0, and ``hf:<id>``.

Weights are read from the local Hugging Face cache or a directory, never downloaded at run
time. Input normalisation follows the checkpoint's feature-extractor config, and the padding
mask is passed where the checkpoint expects one. Checkpoints whose convolutional front-end
uses group normalisation over time (wavlm-base, hubert-base, wav2vec2-base) see padding in
their statistics, so they are run one utterance at a time (``batch_safe = False``): batched
and one-by-one extraction then agree for every family.
"""

from __future__ import annotations

import json
import warnings

import torch
from torch import nn

from serbench.api.checkpoints import locate
from serbench.api.errors import SerbenchError
from serbench.api.upstream import Upstream, UpstreamOutput


def normalise(wavs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance over each utterance's valid samples; padding stays 0."""
    mask = torch.arange(wavs.shape[-1], device=wavs.device) < lengths[:, None]
    n = lengths[:, None].to(wavs.dtype)
    mean = (wavs * mask).sum(-1, keepdim=True) / n
    var = (((wavs - mean) * mask) ** 2).sum(-1, keepdim=True) / n
    return (wavs - mean) / torch.sqrt(var + 1e-7) * mask


class TransformersEncoder(Upstream):
    """Any transformers speech encoder with a convolutional front-end and ``hidden_states``.

    An utterance shorter than the front-end's receptive field (``min_samples``: 400 samples,
    25 ms, for the wav2vec 2.0 family) is padded with zeros to it, so that it yields one frame
    where the model would raise (serbench's choice; the padding is the same alone or in a batch).
    """

    precisions = ("fp32", "bf16")  # a neural forward: -o upstream.precision=bf16 autocasts it

    def __init__(self, model: nn.Module, fingerprint: str, do_normalize: bool, pass_mask: bool):
        super().__init__()
        self.model = model
        self._fingerprint = fingerprint
        self.do_normalize = do_normalize
        config = model.config
        self.pass_mask = pass_mask
        self.batch_safe = pass_mask and config.feat_extract_norm == "layer"
        self.num_layers = config.num_hidden_layers + 1
        self.dim = config.hidden_size
        stride, self.min_samples = 1, 1
        for s in config.conv_stride:
            stride *= s
        for kernel, s in reversed(list(zip(config.conv_kernel, config.conv_stride))):
            self.min_samples = (self.min_samples - 1) * s + kernel  # the shortest input giving one frame
        self.frame_rate = self.sample_rate / stride

    def _at_least_one_frame(self, wavs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if int(lengths.min()) >= self.min_samples:
            return wavs, lengths
        if wavs.shape[-1] < self.min_samples:
            wavs = nn.functional.pad(wavs, (0, self.min_samples - wavs.shape[-1]))
        return wavs, lengths.clamp(min=self.min_samples)

    def frontend_parameters(self) -> list[nn.Parameter]:
        """The convolutional feature encoder, frozen by default when fine-tuning."""
        return list(self.model.feature_extractor.parameters())

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor, mask_time_indices: torch.Tensor | None = None,
                frontend: torch.Tensor | None = None) -> UpstreamOutput:
        """``mask_time_indices`` [B, frames] replaces those frames by the model's learned mask
        embedding before the transformer (HuBERT-style masked prediction). ``frontend``
        [B, C, frames]: the front-end's output for these waveforms (see :meth:`frontend`),
        used instead of running it again; the waveforms then only give the lengths. A
        checkpoint whose padding would leak into its statistics (``batch_safe = False``) runs
        each utterance alone, trimmed to its length, in training as in extraction: an
        utterance's features never depend on its batch-mates."""
        wavs, lengths = self._at_least_one_frame(wavs, lengths)
        if not self.batch_safe and len(wavs) > 1:
            return self._one_by_one(wavs, lengths, mask_time_indices, frontend)
        inputs = normalise(wavs, lengths) if self.do_normalize and frontend is None else wavs
        mask = None
        if self.pass_mask:
            mask = (torch.arange(wavs.shape[-1], device=wavs.device) < lengths[:, None]).long()
        extractor = self.model.feature_extractor
        if frontend is not None:  # the model still calls its front-end: it returns the given output
            extractor.forward = lambda _: frontend
        try:
            with warnings.catch_warnings():  # torch's notice about transformers' mask types
                warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")
                extra = {} if mask_time_indices is None else {"mask_time_indices": mask_time_indices}
                out = self.model(inputs, attention_mask=mask, output_hidden_states=True, **extra)
        finally:
            if frontend is not None:
                del extractor.forward
        frames = self.model._get_feat_extract_output_lengths(lengths)
        return UpstreamOutput(torch.stack(out.hidden_states), frames)

    @torch.no_grad()
    def frontend(self, wavs: torch.Tensor, lengths: torch.Tensor, rows: int = 8) -> list[torch.Tensor]:
        """Each utterance's convolutional front-end output [C, frames], normalised as in
        :meth:`forward` and cut to its valid frames: ``rows`` utterances at a time (its first
        layers hold 10x the frames of its output, so a whole evaluation batch at once would
        set the process's peak memory), one at a time where padding would leak. With ``rows=1``
        an utterance's output depends on nothing else (same numbers in any batch or order)."""
        wavs, lengths = self._at_least_one_frame(wavs, lengths)
        step = rows if self.batch_safe else 1
        if len(wavs) > step:
            return [out for start in range(0, len(wavs), step)
                    for out in self.frontend(wavs[start : start + step], lengths[start : start + step], step)]
        wavs, lengths = self._trimmed(wavs, lengths)  # no padding beyond the longest: one row alone has none
        frames = self.model._get_feat_extract_output_lengths(lengths).tolist()
        inputs = normalise(wavs, lengths) if self.do_normalize else wavs
        out = self.model.feature_extractor(inputs)
        return [out[row, :, :n] for row, n in enumerate(frames)]

    @staticmethod
    def _trimmed(wavs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return wavs[:, : int(lengths.max())], lengths

    def _one_by_one(self, wavs, lengths, mask_time_indices, frontend) -> UpstreamOutput:
        frames = self.model._get_feat_extract_output_lengths(lengths)
        width = int(frames.max())
        outputs = []
        for row, n in enumerate(lengths.tolist()):
            count = int(frames[row])
            masks = None if mask_time_indices is None else mask_time_indices[row : row + 1, :count]
            given = None if frontend is None else frontend[row : row + 1, :, :count]
            hidden = self.forward(wavs[row : row + 1, :n], lengths[row : row + 1], masks, given).hidden_states
            outputs.append(torch.nn.functional.pad(hidden, (0, 0, 0, width - hidden.shape[2])))
        return UpstreamOutput(torch.cat(outputs, dim=1), frames)

    def fingerprint(self) -> str:
        return self._fingerprint


def load(target: str) -> TransformersEncoder:
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    folder, fingerprint = locate(target)
    preprocessor = folder / "preprocessor_config.json"
    settings = json.loads(preprocessor.read_text()) if preprocessor.is_file() else {}
    model = AutoModel.from_pretrained(folder, local_files_only=True)
    if not hasattr(model, "feature_extractor") or not hasattr(model, "_get_feat_extract_output_lengths"):
        raise SerbenchError(f"{target}: {type(model).__name__} is not a wav2vec2-style speech encoder")
    model.eval()
    pass_mask = settings.get("return_attention_mask", model.config.feat_extract_norm == "layer")
    return TransformersEncoder(model, fingerprint, settings.get("do_normalize", True), pass_mask)
