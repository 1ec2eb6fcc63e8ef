"""Fine-tuning mode: the encoder trains with the head, so features are computed per batch.

Chosen when a downstream declares ``DownstreamMeta(upstream='finetune')`` or the user sets
``-o upstream.finetune=true``. The feature cache is bypassed; the encoder gets its own
learning rate (``upstream.lr``) and its convolutional front-end stays frozen unless
``upstream.freeze_frontend=false``. A frozen front-end (the pretrained one: every job starts
from the same weights) computes the same output for the same samples in every job, epoch and
stage, so its output for each uncropped utterance is kept in memory for the run
(``upstream.cache_frontend``; exact) and only randomly cropped rows run it again. The kept
outputs take about 100 kB per second of audio for a 512-channel front-end at 50 Hz in fp32
(2.6 GB for IEMOCAP's 7 h), on the training device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from serbench.api.batch import frame_mask
from serbench.api.specs import Param
from serbench.api.upstream import Upstream, UpstreamOutput
from serbench.run import conformance
from serbench.run.vad import speech_frames

# Parameters every upstream takes; the host applies them, the upstream's factory never sees them.
UPSTREAM_PARAMS = (
    Param("layers", tuple, (), "hidden states to keep, e.g. [0, 12, 24] (default: all)", item=int),
    Param("finetune", bool, False, "train the encoder with the head (on when the downstream asks for it)"),
    Param("lr", float, 3e-5, "encoder learning rate when fine-tuning", bounds="> 0"),
    Param("freeze_frontend", bool, True, "keep the convolutional front-end frozen when fine-tuning"),
    Param("gradient_checkpointing", bool, False, "trade compute for memory in the encoder when fine-tuning"),
    Param("cache_frontend", bool, True, "when fine-tuning with a frozen front-end, keep its output per uncropped utterance for the run"),
    Param("spec_augment", bool, True, "when fine-tuning, the checkpoint's own random time/feature masking (transformers' SpecAugment)"),
    Param("precision", str, "auto", "frozen extraction's forward precision: auto = bf16 on CUDA, fp32 on CPU "
          "(not train.bf16, the training steps')", ("auto", "fp32", "bf16")),
)


class FineTuneModel(nn.Module):
    """Upstream + downstream as one module: waveforms in, the downstream's outputs out.
    ``frontend_cache``: a dict, shared by the jobs of a run, that keeps the frozen front-end's
    output per uncropped utterance (for an upstream that offers ``frontend``, see
    serbench.api.upstream); None runs the front-end on every batch."""

    def __init__(self, upstream: Upstream, downstream: nn.Module, layers: Sequence[int], vad_level: int | None = None,
                 frontend_cache: dict | None = None, name: str = ""):
        super().__init__()
        self.upstream = upstream
        self.name, self.checked = name, False  # the upstream's first output is checked against its contract
        self.downstream = downstream
        self.vad_level = vad_level  # voice activity is computed on the (cropped) waveforms here
        self.register_buffer("layers", torch.tensor(list(layers)), persistent=False)
        self.frontend_cache = frontend_cache if hasattr(upstream, "frontend") else None

    def encode(self, batch: dict, mask_time_indices: torch.Tensor | None = None) -> UpstreamOutput:
        """Every hidden state of the batch's waveforms (stages call this too, to share the
        front-end cache)."""
        extra = {} if mask_time_indices is None else {"mask_time_indices": mask_time_indices}
        if self.frontend_cache is not None and "whole" in batch:
            extra["frontend"] = self._frontend(batch)
        return self.upstream(batch["wavs"], batch["wav_lengths"], **extra)

    def _frontend(self, batch: dict) -> torch.Tensor:
        """The front-end output [B, C, frames] from the cache where a row is a whole utterance,
        computed (and kept, if whole) where not. The key is the utterance, its sample count
        (truncation changes it) and the autocast state (a bf16 front-end gives other numbers)."""
        wavs, lengths = batch["wavs"], batch["wav_lengths"]
        precision = torch.get_autocast_dtype(wavs.device.type) if torch.is_autocast_enabled(wavs.device.type) else None
        keys = [(uid, n, precision) if whole else None
                for uid, n, whole in zip(batch["ids"], lengths.tolist(), batch["whole"])]
        missing = [row for row, key in enumerate(keys) if key is None or key not in self.frontend_cache]
        # a whole utterance's output is computed alone (rows=1): what is kept then depends on the
        # utterance only, not on which job or batch met it first, so a job scores the same in any
        # process, resumed or not, under any executor; cropped rows are not kept and go 8 at a time
        whole = [row for row in missing if keys[row] is not None]
        cropped = [row for row in missing if keys[row] is None]
        fresh = dict(zip(whole, self.upstream.frontend(wavs[whole], lengths[whole], rows=1))) if whole else {}
        if cropped:
            fresh.update(zip(cropped, self.upstream.frontend(wavs[cropped], lengths[cropped])))
        rows = []
        for row, key in enumerate(keys):
            if row in fresh:
                out = fresh[row]
                if key is not None:
                    self.frontend_cache[key] = out.clone()  # not a view of the whole batch's tensor
                rows.append(out)
            else:
                rows.append(self.frontend_cache[key])
        width = max(r.shape[-1] for r in rows)
        return torch.stack([nn.functional.pad(r, (0, width - r.shape[-1])) for r in rows])

    def forward(self, batch: dict) -> dict:
        out = self.encode(batch)
        if not self.checked:
            conformance.check_upstream(out, self.upstream, len(batch["ids"]), self.name)
            self.checked = True
        features = out.hidden_states.index_select(0, self.layers).permute(1, 0, 2, 3).float()
        lengths = out.lengths
        extra = {"features": features, "lengths": lengths, "mask": frame_mask(lengths, features.shape[2])}
        if self.vad_level is not None:
            extra["vad"] = self._vad(batch, lengths, features.shape[2]).to(features.device)
        return self.downstream({**batch, **extra})

    def _vad(self, batch: dict, lengths: torch.Tensor, frames: int) -> torch.Tensor:
        wavs = batch["wavs"].detach().float().cpu().numpy()
        vad = torch.zeros(len(wavs), frames, dtype=torch.bool)
        for row, (wav, n) in enumerate(zip(wavs, batch["wav_lengths"].tolist())):
            mask = speech_frames(wav[:n], self.upstream.frame_rate, int(lengths[row]), self.vad_level)
            vad[row, : mask.size] = torch.from_numpy(mask)
        return vad


def prepare(upstream: Upstream, freeze_frontend: bool, gradient_checkpointing: bool, spec_augment: bool = True) -> None:
    """Put the encoder in training shape: front-end frozen (and keeping no autograd graph:
    transformers otherwise marks its output as requiring grad, which keeps every
    convolution's activations for a backward pass that changes nothing), checkpointing where
    supported, and LayerDrop off: with it, transformers returns fewer hidden states on the
    steps that skip a layer, which would scramble a head's per-layer weights. Without
    ``spec_augment`` the random masking probabilities are set to 0, while explicit masks
    (``mask_time_indices``) still apply."""
    upstream.train()
    model = getattr(upstream, "model", None)
    if freeze_frontend and hasattr(upstream, "frontend_parameters"):
        for p in upstream.frontend_parameters():
            p.requires_grad_(False)
        extractor = getattr(model, "feature_extractor", None)
        if hasattr(extractor, "_requires_grad"):  # HubertModel has no freeze_feature_encoder
            extractor._requires_grad = False
    if model is not None and getattr(model.config, "layerdrop", 0.0):
        model.config.layerdrop = 0.0
    if model is not None and not spec_augment:
        model.config.mask_time_prob = 0.0
        model.config.mask_feature_prob = 0.0
        model.config.apply_spec_augment = True  # explicit mask_time_indices are honoured only then
    if gradient_checkpointing and model is not None:
        enable = getattr(model, "activation_checkpointing_enable", None) or getattr(model, "gradient_checkpointing_enable", None)
        if enable is not None:
            enable()


def parameter_groups(model: FineTuneModel, lr: float, upstream_lr: float) -> list[dict]:
    trainable = [p for p in model.upstream.parameters() if p.requires_grad]
    return [{"params": list(model.downstream.parameters()), "lr": lr}, {"params": trainable, "lr": upstream_lr}]
