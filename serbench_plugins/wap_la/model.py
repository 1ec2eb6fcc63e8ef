"""``wap_la``: WAP-LA, Song, McLoughlin, Gu, Jiang & Song, "An Efficient Transfer Learning
Method Based on Adapter with Local Attributes for Speech Emotion Recognition".

A frozen encoder (HuBERT Large in the paper; the feature cache applies) feeds the
WAP-Transformer adapter: Linear(D -> 384) patch embedding, a learnable position embedding, 3
transformer blocks of width 384 whose outputs are combined by a learnable weighted average
(Z = sum_l w_l X^l), then a 3-layer MLP.

Stage 1, ``adapter`` (self-supervised; reads train and dev audio features, no labels): the
student sees 40% of frame positions replaced by a learnable mask embedding, the teacher (an
EMA of the student, alpha 0.999, Eq. 2) sees them all. L_rec is the mean over masked
positions of ||z_t - z_s||^2 (Eq. 1). K prototypes (local attributes) are learned online from
teacher frames: each frame goes to its nearest prototype (Eq. 4), which moves toward it,
p <- p + eta (z - p) (Eq. 5; applied per batch with the mean of the frames assigned to p, a
documented mini-batch reading). L_pce is the cross-entropy on masked positions between the
teacher's assignments and the student's logits, cosine similarities to the prototypes over a
temperature. L = lambda L_rec + (1 - lambda) L_pce with lambda ramped linearly from 1.0 to
0.5 over the stage. Adam, cosine schedule.

Stage 2 is serbench's supervised training: the student adapter, ``sap_stat`` pooling and a
linear classifier with CE. It fine-tunes the student, not the EMA teacher (this plugin's
choice: the paper does not say which branch goes on). Its recipe (``serbench list downstreams
wap_la``, and ``config.recipe.stages`` of every run): the paper's 100 epochs at batch 96; Adam
(AdamW with weight decay 0) at lr 1e-4 with a cosine schedule, the adapter stage's settings
reused, since the paper states them for that stage only (this plugin's reading); no early
stopping (patience 100), and the best epoch on the protocol's dev carve-out is kept (this
plugin's choice: the paper trains on all four training sessions, a run here on 80% of their
utterances by default, which the reported-vs-measured table states). ``-o
train.select_split=none`` runs it as the paper did: all training sessions' utterances (the adapter
stage's too), every one of the 100 epochs, the last weights kept (serbench.api.full_training). Minority-class augmentation: every training batch gains masked
copies of its minority-class utterances (``aug_mask_ratio`` of a copy's frames replaced by
the mask embedding): an utterance of class c gets max_k n_k / n_c - 1 copies in expectation
(the integer part always, the fraction at random), so each class is seen max_k n_k times an
epoch in expectation; the originals stay unmasked.

The teacher runs in eval mode (no dropout): it provides targets, and an EMA teacher's
targets are usually taken without dropout noise (this plugin's choice; the paper does not
say).
``adapter_training=false`` skips stage 1 (the paper's ablation). Choices where the paper is
silent: the adapter reads the encoder's last layer; 6 attention heads (``adapter_heads``);
MLP width 384; one adapter token per encoder frame (``patch`` = 1; ``patch`` = n embeds n
consecutive frames as one token, and a token is valid when any of its frames is).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from serbench.api.blocks import masked_self_attention
from serbench.api.downstream import DownstreamContext
from serbench.api.stages import Optimiser, Schedule, Stage, StageInput
from serbench_plugins.wap_la.statistical_attentive import StatisticalAttentivePooling


class Block(nn.Module):
    """A pre-norm transformer block (self-attention, then a 4x GELU MLP), attention through
    ``scaled_dot_product_attention`` over the valid frames. Dropout (the plugin's choice) acts
    on each sub-block's output, not on attention weights, which would force the slow
    reference kernel."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.out = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = h + self.dropout(self.out(masked_self_attention(self.qkv(self.norm1(h)), mask, self.heads)))
        return h + self.dropout(self.mlp(self.norm2(h)))


class Adapter(nn.Module):
    """WAP-Transformer: patch embedding, positions, weighted average of blocks, MLP."""

    def __init__(self, dim_in: int, width: int = 384, blocks: int = 3, heads: int = 6, max_frames: int = 4096,
                 dropout: float = 0.1):
        super().__init__()
        self.patch = nn.Linear(dim_in, width)
        self.position = nn.Parameter(torch.randn(max_frames, width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, heads, dropout) for _ in range(blocks))
        self.block_weights = nn.Parameter(torch.zeros(blocks))
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, width), nn.GELU(), nn.Linear(width, width))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, masked: torch.Tensor | None = None,
                mask_embedding: torch.Tensor | None = None) -> torch.Tensor:
        h = self.patch(x)
        if masked is not None:
            h = torch.where(masked.unsqueeze(-1), mask_embedding.to(h.dtype), h)
        h = h + self.position[: h.shape[1]]
        outputs = []
        for block in self.blocks:
            h = block(h, mask)
            outputs.append(h)
        weights = torch.softmax(self.block_weights, dim=0)
        return self.mlp(torch.einsum("l,lbtd->btd", weights, torch.stack(outputs)))


def random_positions(mask: torch.Tensor, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """About ``ratio`` of each utterance's valid frames (at least one), chosen at random."""
    scores = torch.rand(mask.shape, generator=generator).to(mask.device).masked_fill(~mask, 2.0)
    counts = (mask.sum(1) * ratio).ceil().clamp(min=1).long()
    ranks = scores.argsort(dim=1).argsort(dim=1)
    return (ranks < counts.unsqueeze(1)) & mask


def ema_update(teacher: nn.Module, student: nn.Module, alpha: float) -> None:
    """theta_t <- alpha theta_t + (1 - alpha) theta_s (Eq. 2)."""
    with torch.no_grad():
        for t, s in zip(teacher.parameters(), student.parameters()):
            t.mul_(alpha).add_(s.detach(), alpha=1 - alpha)


def assign(frames: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Index of the nearest prototype (Euclidean) for each frame (Eq. 4)."""
    return torch.cdist(frames, prototypes).argmin(dim=-1)


def update_prototypes(prototypes: torch.Tensor, frames: torch.Tensor, labels: torch.Tensor, eta: float) -> None:
    """p_k <- p_k + eta (mean of its frames - p_k) for every prototype that got frames (Eq. 5).
    The frames are summed in the prototypes' precision (float32 under ``train.bf16`` too)."""
    frames = frames.to(prototypes.dtype)
    sums = torch.zeros_like(prototypes).index_add_(0, labels, frames)
    counts = torch.bincount(labels, minlength=prototypes.shape[0]).to(frames.dtype).unsqueeze(1)
    hit = counts.squeeze(1) > 0
    prototypes[hit] += eta * (sums[hit] / counts[hit] - prototypes[hit])


def cosine_logits(frames: torch.Tensor, prototypes: torch.Tensor, temperature: float) -> torch.Tensor:
    return F.normalize(frames, dim=-1) @ F.normalize(prototypes, dim=-1).T / temperature


def lambda_at(progress: float, start: float = 1.0, end: float = 0.5) -> float:
    """The L_rec weight, linear from ``start`` to ``end`` over the stage."""
    return start + (end - start) * min(max(progress, 0.0), 1.0)


class WapLa(nn.Module):
    def __init__(self, context: DownstreamContext, prototypes: int, mask_ratio: float, alpha: float,
                 lambda_start: float, lambda_end: float, temperature: float, eta: float, adapter_training: bool,
                 adapter_epochs: int, adapter_lr: float, adapter_batch_size: int, heads: int, aug_mask_ratio: float,
                 width: int, blocks: int, adapter_heads: int, patch: int):
        super().__init__()
        self.patch = patch
        self.adapter = Adapter(context.dim * patch, width, blocks, adapter_heads)
        self.teacher = copy.deepcopy(self.adapter).requires_grad_(False)
        self.mask_embedding = nn.Parameter(torch.randn(width) * 0.02)
        self.register_buffer("prototypes", torch.randn(prototypes, width))
        self.pooling = StatisticalAttentivePooling(width, heads)
        self.classifier = nn.Linear(self.pooling.out_dim, len(context.classes))
        counts = torch.tensor(context.train_counts or [1] * len(context.classes), dtype=torch.float32)
        self.register_buffer("extra_copies", torch.where(counts > 0, counts.max() / counts.clamp(min=1) - 1, 0.0))
        self.settings = dict(mask_ratio=mask_ratio, alpha=alpha, lambda_start=lambda_start, lambda_end=lambda_end,
                             temperature=temperature, eta=eta, epochs=adapter_epochs, lr=adapter_lr,
                             batch_size=adapter_batch_size)
        self.adapter_training = adapter_training
        self.aug_mask_ratio = aug_mask_ratio

    def stages(self) -> list[Stage]:
        """Stage 1 as data: Adam over the student and the mask embedding, cosine to 0 over the
        stage's steps; prototypes drawn before it, the EMA teacher updated after each step."""
        if not self.adapter_training:
            return []
        s = self.settings
        return [Stage("adapter", splits=("train", "dev"), labels=False, step=self.ssl_losses,
                      optimiser=Optimiser("adam", s["lr"]), schedule=Schedule("cosine"), epochs=s["epochs"],
                      batch_size=s["batch_size"], parameters=lambda _: [*self.adapter.parameters(), self.mask_embedding],
                      before=self.draw_prototypes, after_step=self.update_teacher)]

    def tokens(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The last layer's frames grouped ``patch`` at a time: tokens [B, T/patch, patch*D]
        and their mask (a token is valid when any of its frames is)."""
        x, mask = batch["features"][:, -1], batch["mask"]
        if self.patch == 1:
            return x, mask
        pad = -x.shape[1] % self.patch
        x, mask = F.pad(x, (0, 0, 0, pad)), F.pad(mask, (0, pad))
        b, t, d = x.shape
        return x.reshape(b, t // self.patch, self.patch * d), mask.reshape(b, t // self.patch, self.patch).any(-1)

    def ssl_losses(self, batch: dict, generator: torch.Generator, progress: float) -> torch.Tensor:
        x, mask = self.tokens(batch)
        s = self.settings
        masked = random_positions(mask, s["mask_ratio"], generator)
        student = self.adapter(x, mask, masked, self.mask_embedding)
        with torch.no_grad():
            teacher = self.teacher(x, mask).float()  # bf16 under autocast; targets and prototypes in float32
            targets = assign(teacher[masked], self.prototypes)
            valid = teacher[mask]
            update_prototypes(self.prototypes, valid, assign(valid, self.prototypes), s["eta"])
        rec = ((teacher[masked] - student[masked]) ** 2).sum(-1).mean()
        pce = F.cross_entropy(cosine_logits(student[masked], self.prototypes, s["temperature"]), targets)
        lam = lambda_at(progress, s["lambda_start"], s["lambda_end"])
        return lam * rec + (1 - lam) * pce

    def draw_prototypes(self, stage: StageInput, generator: torch.Generator) -> None:
        """Prototypes start at randomly chosen teacher frames of the stage's first ids."""
        with torch.no_grad():
            x, mask = self.tokens(stage.batcher(list(stage.ids)[: self.settings["batch_size"]]))
            frames = self.teacher(x, mask)[mask]
            pick = torch.randint(0, frames.shape[0], (self.prototypes.shape[0],), generator=generator)
            self.prototypes.copy_(frames[pick.to(frames.device)])

    def update_teacher(self) -> None:
        ema_update(self.teacher, self.adapter, self.settings["alpha"])

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # targets without dropout noise
        return self

    def forward(self, batch: dict) -> dict:
        x, mask = self.tokens(batch)
        if not (self.training and "labels" in batch and self.aug_mask_ratio > 0):
            z = self.adapter(x, mask)
            return {"logits": self.classifier(self.pooling(z, mask, batch))}
        labels = batch["labels"]
        extra = self.extra_copies[labels]
        copies = extra.floor() + (torch.rand(len(x), device=x.device) < extra - extra.floor()).to(extra.dtype)
        rows = torch.repeat_interleave(torch.arange(len(x), device=x.device), copies.long())
        x_all, mask_all = torch.cat([x, x[rows]]), torch.cat([mask, mask[rows]])
        masked = torch.rand(mask_all.shape, device=x.device) < self.aug_mask_ratio
        masked[: len(x)] = False  # originals unmasked, copies masked
        z = self.adapter(x_all, mask_all, masked & mask_all, self.mask_embedding)
        return {"logits": self.classifier(self.pooling(z, mask_all, batch)), "labels": torch.cat([labels, labels[rows]])}
