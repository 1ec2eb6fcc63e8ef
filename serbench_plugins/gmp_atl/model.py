"""``gmp_atl``: GMP-ATL, Pan, Yang, Lu, Ma & Zhao, "Gender-augmented Multi-scale Pseudo-label
Enhanced Adaptive Transfer Learning for Speech Emotion Recognition via HuBERT" (Interspeech 2024).

The encoder (HuBERT; the paper's footnote names hubert-base-ls960) is trained in all stages,
so this downstream runs in fine-tuning mode.

Stage 1, ``multitask`` (train split, emotion and gender labels): encoder -> BiLSTM -> mean
pooling -> LinearP (Linear, ReLU, Linear) with an emotion and a gender head;
L = alpha_e CE_emotion + (1 - alpha_e) CE_gender, alpha_e = 0.9.
Pseudo-labels, ``pseudo_labels`` (a serbench stage of its own, so that it resumes; train
split, no labels): frames of the stage-1 encoder's hidden state ``layer`` (-3:
third-to-last) clustered by batched k-means (serbench.api.kmeans, seeded k-means++) at each scale
(64, 512, 4096) on training-fold frames only (at most ``kmeans_frames``, drawn at random); the
centres are kept in the model.
Stage 2, ``masked_prediction`` (train split, no labels): every training frame gets its label
at each scale from the stage-1 encoder, then the encoder is retrained with HuBERT-style span
masking, a LinearP per scale predicting each masked frame's labels, CE summed over scales.
Stage 3 is serbench's supervised training: the stage-2 encoder fine-tuned for utterance
emotion with ``am_softmax`` (m = 0.2, s = 30) on cosine similarities; ``--loss ce`` is the
paper's CE variant, trained on a plain linear classifier (stage 1's emotion head), not on
scaled cosines.

The paper's ablation rows, as this plugin runs them: "AMS/CE without GMPs" =
``pseudo_labels=false multitask=false`` (neither the gender-augmented stage nor the
pseudo-labels: the encoder is fine-tuned for emotion alone), with ``--loss am_softmax`` or
``--loss ce``; "GMPs + CE" = the defaults with ``--loss ce``. That "without GMPs" also drops
stage 1 is this plugin's reading; ``multitask=true pseudo_labels=false`` keeps it.

Choices where the paper is silent: the utterance head of the final stage is stage 1's BiLSTM
and LinearP with a cosine classifier; stages read whole utterances (no crops), so frame
labels stay aligned, in length-bucketed batches; masking follows HuBERT: spans of
``mask_length`` = 10 frames with ``mask_prob`` = 0.8 in transformers' span formula (about
half of the frames masked); transformers' own random SpecAugment is off in every stage
(``upstream.spec_augment=false``), so stage 2's masks are the only masking; with
``-o upstream.spec_augment=true`` on a checkpoint whose config has ``apply_spec_augment=false``
the stages are refused (transformers would drop stage 2's masks). Stage settings where the paper
is silent, all this plugin's: 10 epochs per stage, no early stopping and no gradient clipping
inside stages 1 and 2 (a constant lr), BiLSTM and LinearP 256 wide; the final stage's epochs,
patience, schedule and clipping are the harness's defaults (``serbench list downstreams
gmp_atl`` shows each stage's table). Like every serbench method with model selection, the final
stage selects its epoch on the protocol's dev carve-out of the training sessions, so it trains
on 80% of their utterances by default (IEMOCAP's ``dev_fraction`` 0.2); ``-o
train.select_split=none`` trains every stage on all of them for ``train.max_epochs`` epochs (the
paper gives no count: 30, the harness's default, is this plugin's) and keeps the last weights.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from serbench.api.blocks import CosineClassifier, gender_ids
from serbench.api.downstream import DownstreamContext
from serbench.api.errors import SerbenchError
from serbench.api.kmeans import kmeans
from serbench.api.stages import Optimiser, Stage, StageInput


def span_mask(lengths: torch.Tensor, mask_prob: float, mask_length: int) -> torch.Tensor:
    """HuBERT-style span masks ``[B, max(lengths)]`` over each utterance's valid frames, drawn
    with transformers' span formula (``mask_prob`` x frames / ``mask_length`` span starts)."""
    from transformers.models.hubert.modeling_hubert import _compute_mask_indices

    frames = int(lengths.max())
    valid = torch.arange(frames, device=lengths.device)[None] < lengths[:, None]
    spans = _compute_mask_indices((len(lengths), frames), mask_prob, mask_length,
                                  attention_mask=valid.long().cpu(), min_masks=1)
    return torch.as_tensor(spans, device=lengths.device) & valid


def linear_p(dim: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, out))


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    w = mask.unsqueeze(-1).to(x.dtype)
    return (x * w).sum(1) / w.sum(1).clamp(min=1.0)


class GmpAtl(nn.Module):
    def __init__(self, context: DownstreamContext, scales: tuple, layer: int, alpha_e: float, pseudo_labels: bool,
                 multitask: bool, lstm_hidden: int, hidden: int, stage1_epochs: int, stage2_epochs: int, stage_lr: float,
                 stage_batch_size: int, mask_prob: float, mask_length: int, kmeans_frames: int):
        super().__init__()
        dim = context.dim
        self.lstm = nn.LSTM(dim, lstm_hidden, batch_first=True, bidirectional=True)
        self.head = linear_p(2 * lstm_hidden, hidden, hidden)
        self.emotion = CosineClassifier(hidden, len(context.classes))
        self.emotion_ce = nn.Linear(hidden, len(context.classes))  # stage 1's plain emotion head
        self.gender = nn.Linear(hidden, 2)
        self.scales = tuple(int(k) for k in scales)
        for n, k in enumerate(self.scales):
            self.register_buffer(f"centres_{n}", torch.zeros(k, dim))
        self.predictors = nn.ModuleList(linear_p(dim, hidden, k) for k in self.scales)
        self.layer, self.alpha_e, self.pseudo_labels, self.multitask = layer, alpha_e, pseudo_labels, multitask
        self.cosine_head = context.loss in ("am_softmax", "")  # --loss ce: a plain linear classifier
        self.settings = dict(stage1_epochs=stage1_epochs, stage2_epochs=stage2_epochs, lr=stage_lr,
                             batch_size=stage_batch_size, mask_prob=mask_prob, mask_length=mask_length,
                             kmeans_frames=kmeans_frames)
        self.scale = 30.0
        # during the stages: the fine-tuning wrapper and the frame labels the pseudo-label stage made
        self._running: dict = {}

    def utterance(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(frames, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=frames.shape[1])
        return self.head(masked_mean(out, mask))

    def forward(self, batch: dict) -> dict:
        z = self.utterance(batch["features"][:, -1], batch["mask"])
        if not self.cosine_head:
            return {"logits": self.emotion_ce(z)}
        cosine = self.emotion(z)
        return {"logits": self.scale * cosine, "cosine": cosine}

    # -- stages -------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        """The stages as data: Adam at the stage lr, constant, no clipping; whole utterances
        (no crops), so frame labels stay aligned."""
        s = self.settings
        train = dict(optimiser=Optimiser("adam", s["lr"]), batch_size=s["batch_size"], train_batches=False)
        stages = [Stage("multitask", ("train",), True, step=self.multitask_loss, epochs=s["stage1_epochs"],
                        before=self._tuned, **train)] if self.multitask else []
        if self.pseudo_labels:
            stages += [Stage("pseudo_labels", ("train",), False, before=self.make_pseudo_labels),
                       Stage("masked_prediction", ("train",), False, step=self.masked_prediction_loss,
                             epochs=s["stage2_epochs"], before=self.label_frames, **train)]
        return stages

    def _tuned(self, stage: StageInput, generator: torch.Generator | None = None):
        """The fine-tuning model (serbench.run.finetune.FineTuneModel): ``.encode(batch)`` runs its
        encoder; kept for the stage's steps. Checked before each stage: a checkpoint whose config
        turns SpecAugment off (``apply_spec_augment=false``) under ``-o upstream.spec_augment=true``
        (the checkpoint's own masking kept as it is) would make transformers ignore stage 2's
        explicit masks, so the encoder would be retrained to predict labels of frames it sees:
        refused, not silently run. With ``spec_augment=false`` (this method's default) serbench
        turns the random masking off and the explicit masks on (serbench.run.finetune.prepare)."""
        upstream = getattr(stage.model, "upstream", None)
        if upstream is None or not hasattr(upstream, "model"):
            raise SerbenchError("gmp_atl trains the encoder: it needs a transformers upstream (hubert_base, hf:...)")
        if self.pseudo_labels and not getattr(upstream.model.config, "apply_spec_augment", True):
            raise SerbenchError("gmp_atl: -o upstream.spec_augment=true keeps this checkpoint's own SpecAugment, which its "
                                "config turns off (apply_spec_augment=false): transformers would then ignore the "
                                "masked-prediction stage's masks; leave upstream.spec_augment at false (this method's "
                                "default), or run pseudo_labels=false")
        self._running["tuned"] = stage.model  # a plain dict: the wrapper holds this module, not the reverse
        return stage.model

    def multitask_loss(self, batch: dict, generator: torch.Generator, progress: float) -> torch.Tensor:
        """Stage 1: alpha_e CE over emotions + (1 - alpha_e) CE over the known genders."""
        out = self._running["tuned"].encode(batch)
        mask = torch.arange(out.hidden_states.shape[2], device=out.lengths.device)[None] < out.lengths[:, None]
        z = self.utterance(out.hidden_states[-1].float(), mask)
        genders = gender_ids(batch["genders"], z.device)
        known = genders < 2
        loss = self.alpha_e * F.cross_entropy(self.emotion_ce(z), batch["labels"])
        if known.any():
            loss = loss + (1 - self.alpha_e) * F.cross_entropy(self.gender(z[known]), genders[known])
        return loss

    @torch.no_grad()
    def _frames(self, tuned, batch) -> list[torch.Tensor]:
        out = tuned.encode(batch)
        hidden = out.hidden_states[self.layer].float()
        return [hidden[row, : int(n)] for row, n in enumerate(out.lengths)]

    def make_pseudo_labels(self, stage: StageInput, generator: torch.Generator) -> None:
        """k-means centres per scale over (at most ``kmeans_frames``) training frames of the
        stage-1 encoder; its frames labelled now for the next stage (not gradient training)."""
        tuned = self._tuned(stage)
        stage.model.eval()
        size = self.settings["batch_size"]
        per_utterance = {uid: f for chunk in stage.batches(size) for uid, f in zip(chunk, self._frames(tuned, stage.batcher(chunk)))}
        frames = torch.cat(list(per_utterance.values()))
        if frames.shape[0] > self.settings["kmeans_frames"]:
            frames = frames[torch.randperm(frames.shape[0], generator=generator)[: self.settings["kmeans_frames"]].to(frames.device)]
        for n, k in enumerate(self.scales):
            centres, _ = kmeans(frames, k, seed=stage.seed + n)
            filled = centres[torch.arange(k) % centres.shape[0]]  # fewer frames than k: repeat centres
            getattr(self, f"centres_{n}").copy_(filled)
        # the masked-prediction stage reads the same encoder's frames: label them now, not twice
        self._running["targets"] = {uid: self.labels_for(f) for uid, f in per_utterance.items()}

    def labels_for(self, frames: torch.Tensor) -> list[torch.Tensor]:
        return [torch.cdist(frames, getattr(self, f"centres_{n}")).argmin(-1) for n in range(len(self.scales))]

    def label_frames(self, stage: StageInput, generator: torch.Generator) -> None:
        """Before stage 2: every training frame's label at each scale, from the stage-1 encoder
        (kept from the pseudo-label stage of this process; made again after a resume)."""
        tuned = self._tuned(stage)
        if not hasattr(tuned.upstream.model, "masked_spec_embed"):
            raise SerbenchError("gmp_atl: this encoder has no mask embedding (its config has mask_time_prob = 0)")
        stage.model.eval()
        targets = self._running.get("targets") or {}
        if set(targets) != set(stage.ids):  # resumed after that stage: label again, from the same encoder
            targets = {}
            for chunk in stage.batches(self.settings["batch_size"]):  # the stage-1 encoder, before it changes
                for uid, frames in zip(chunk, self._frames(tuned, stage.batcher(chunk))):
                    targets[uid] = self.labels_for(frames)
        self._running["targets"] = targets

    def masked_prediction_loss(self, batch: dict, generator: torch.Generator, progress: float) -> torch.Tensor:
        """Stage 2: HuBERT-style span masks; CE of each masked frame's label, summed over scales."""
        tuned, targets, s = self._running["tuned"], self._running["targets"], self.settings
        lengths = tuned.upstream.model._get_feat_extract_output_lengths(batch["wav_lengths"])
        masked = span_mask(lengths, s["mask_prob"], s["mask_length"])
        out = tuned.encode(batch, mask_time_indices=masked)
        last = out.hidden_states[-1].float()
        rows, cols = masked.nonzero(as_tuple=True)
        loss = last.new_zeros(())
        for n, predictor in enumerate(self.predictors):
            labels = nn.utils.rnn.pad_sequence([targets[uid][n] for uid in batch["ids"]], batch_first=True)
            wanted = labels.to(last.device)[rows, cols]
            loss = loss + F.cross_entropy(predictor(last[rows, cols]), wanted)
        return loss
