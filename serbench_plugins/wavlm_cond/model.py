"""``wavlm_cond``: WavLM with gender and text conditioning, Diatlova, Udalov, Shutov & Spirin,
"Adapting WavLM for Speech Emotion Recognition" (Odyssey 2024 emotion challenge).

Weighted average of all encoder layers (learnable), a projection (a single Linear to 256, the
paper's choice, or the challenge baseline's Linear + LayerNorm + ReLU + Dropout), pooling over
time (``--pooling mean|std|attention``), optional gender and text conditioning of the pooled
vector (see :mod:`conditioning`), and a linear classifier. Loss ``weighted_ce`` by default;
``label_smoothing`` is the other one the paper tried.

Choices where the paper is silent: conditioning acts on the pooled vector, 256 wide as the
paper's (``hidden``; under ``std`` or ``attention`` pooling, which concatenate mean and
standard deviation, the projection is 128 wide so that the pooled vector is 256); utterances of unknown gender get
a third, learned embedding; dropout 0.1 before the classifier. In training: AdamW with weight
decay 0.01, gradient clipping at norm 5, a constant learning rate and LayerDrop off (the
harness's, none from the paper); the text encoder is the English all-MiniLM-L6-v2, where the
paper's is multilingual; conditional layer norm divides by the standard deviation, where the
paper's formula divides by the variance. The recipe record (``own_choices``) and ``serbench
list downstreams wavlm_cond`` name the same choices.

**Dimensional task** (``--task dimensional``, serbench's extension): the paper reports the
challenge's categorical track only (macro-F1 on MSP-Podcast); the corpus and the challenge also
have an attribute track (arousal, valence, dominance, scored by CCC). Under ``--task
dimensional`` the same conditioned model is built with the dimension names as its classes: the
final linear layer then has one output per dimension, read as that dimension's standardised
value (:class:`serbench.run.dimensional_task.ValuesModel`), trained with ``mse`` unless
``--loss ccc`` is given. Every layer before it, the conditioning included, is unchanged, and so
is the categorical model (no version bump). That head, its loss and its target scaling are
serbench's own choices, not the paper's.

Model selection as the paper reported: the best of every epoch's score on MSP-Podcast's
Development, mean over seeds. When a run scores Development (``msp_podcast -o
protocol.test_set=Development``), the paper recipe selects each seed's epoch there
(``train.select_split=test``; optimistic, and the run log says so), and the summary is the
mean over seeds; scored on another split, it selects on the fold's dev, which for Test1/Test2
is Development itself.
"""

from __future__ import annotations

from torch import nn

from serbench.api.blocks import LayerWeights
from serbench.api.downstream import DownstreamContext
from serbench.api.errors import SerbenchError
from serbench_plugins.wavlm_cond.conditioning import Conditioning
from serbench_plugins.wavlm_cond.text_embedding import DIM as TEXT_DIM
from serbench_plugins.wavlm_cond.text_embedding import sentence_encoder


class WavLMConditioned(nn.Module):
    def __init__(self, context: DownstreamContext, projection: str, hidden: int, gender: str, text: str,
                 dropout: float, allow_missing_transcripts: bool):
        super().__init__()
        self.layers = LayerWeights(context.num_layers)
        # the conditioned (pooled) vector is ``hidden`` wide, as the paper's 256: poolings that
        # concatenate mean and std double their input, so the projection is narrower for them
        hidden //= max(context.make_pooling(hidden).out_dim // hidden, 1)
        if projection == "linear":
            self.project = nn.Linear(context.dim, hidden)
        else:
            self.project = nn.Sequential(nn.Linear(context.dim, hidden), nn.LayerNorm(hidden), nn.ReLU(), nn.Dropout(dropout))
        self.pooling = context.make_pooling(hidden)
        try:
            self.condition = Conditioning(self.pooling.out_dim, gender, text, TEXT_DIM, dropout)
        except ValueError as exc:
            raise SerbenchError(f"downstream wavlm_cond: {exc}") from None
        self.uses_text = text != "none"
        self.allow_missing = allow_missing_transcripts
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.pooling.out_dim, len(context.classes))
        if self.uses_text:
            sentence_encoder()  # fail now, not mid-training, when the extra is missing

    def forward(self, batch: dict) -> dict:
        frames = self.project(self.layers(batch["features"]))
        pooled = self.pooling(frames, batch["mask"], batch)
        if self.uses_text:
            texts = [t if t is not None else "" for t in batch["transcripts"]] if self.allow_missing else batch["transcripts"]
            batch = {**batch, "text_embedding": sentence_encoder().encode(texts).to(pooled.device)}
        return {"logits": self.classifier(self.dropout(self.condition(pooled, batch)))}
