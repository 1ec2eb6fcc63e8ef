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
a third, learned embedding; dropout 0.1 before the classifier.
"""

from __future__ import annotations

from torch import nn

from serbench.downstream import DownstreamContext
from serbench.errors import SerbenchError
from serbench.hookspecs import hookimpl
from serbench.recipes import Recipe
from serbench.specs import Param, Spec
from serbench_plugins.methods.conditioning import GENDER_MODES, TEXT_MODES, Conditioning
from serbench_plugins.methods.superb import LayerWeights
from serbench_plugins.methods.text_embedding import DIM as TEXT_DIM
from serbench_plugins.methods.text_embedding import sentence_encoder

CITATION = "Diatlova, Udalov, Shutov & Spirin, Adapting WavLM for Speech Emotion Recognition, Odyssey 2024, arXiv:2405.04485"
_DEV = {"protocol": "msp_podcast", "metric": "macro_f1", "split": "Development", "ci95": None, "unit": "fraction",
        "encoder": "WavLM Large, fine-tuned"}
REPORTED = [
    {"variant": "pooling=mean", "pooling": "mean", "value": 0.30, **_DEV},
    {"variant": "pooling=std", "pooling": "std", "value": 0.31, **_DEV},
    {"variant": "pooling=attention", "pooling": "attention", "value": 0.28, **_DEV},
    {"variant": "gender=sum", "pooling": "std", "value": 0.32, **_DEV},
    {"variant": "gender=sum_half", "pooling": "std", "value": 0.32, **_DEV},
    {"variant": "gender=mul", "pooling": "std", "value": 0.31, **_DEV},
    {"variant": "gender=stack_linear", "pooling": "std", "value": 0.29, **_DEV},
    {"variant": "gender=cln", "pooling": "std", "value": 0.31, **_DEV},
    {"variant": "text=sum_third", "pooling": "std", "value": 0.31, **_DEV},
    {"variant": "text=mul", "pooling": "std", "value": 0.30, **_DEV},
    {"variant": "text=cln", "pooling": "std", "value": 0.31, **_DEV},
    {"variant": "fusion of five models", "pooling": "five systems", "value": 0.35, **_DEV},
]
RECIPE = Recipe(
    overrides={"upstream.finetune": True, "upstream.lr": 1e-5, "train.lr": 1e-5, "train.weight_decay": 0.01,
               "train.max_epochs": 20, "train.batch_size": 32, "train.crop_seconds": 5.0},
    pooling="std",
    source="Diatlova et al. 2024: WavLM Large fine-tuned at lr 1e-5 (weight decay 0.01), 20 epochs, batch 32, "
           "random 5 s crops; STD pooling, as in its gender and text rows",
    suggested={"upstream": "wavlm_large", "protocol": "msp_podcast -o protocol.test_set=Development"},
    demo={"train.max_epochs": 3, "train.lr": 1e-3, "upstream.lr": 1e-4},
    demo_why="a demo fine-tunes a small random encoder, not WavLM Large: 3 epochs, the head at the harness's "
             "lr 1e-3 and the encoder at 1e-4 (at 1e-5 neither moves in a demo's few steps)",
)


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


def _needs(params) -> tuple[str, ...]:
    needs = ()
    if params.get("gender", "none") != "none" or params.get("text", "none") != "none":
        needs += ("gender",)
    if params.get("text", "none") != "none":
        needs += ("transcript",)
    return needs


@hookimpl
def register_downstreams() -> list[Spec]:
    return [
        Spec(
            name="wavlm_cond",
            factory=WavLMConditioned,
            summary="WavLM layer average, projection, pooling, gender/text conditioning (Diatlova et al. 2024)",
            params=(
                Param("projection", str, "linear", "linear (the paper) or mlp (the challenge baseline)", ("linear", "mlp")),
                Param("hidden", int, 256, "width of the pooled vector that is conditioned (the projection is half as wide under std/attention pooling)"),
                Param("gender", str, "none", "gender conditioning", GENDER_MODES),
                Param("text", str, "none", "text conditioning (includes the gender embedding)", TEXT_MODES),
                Param("dropout", float, 0.1, "dropout in the projection (mlp), text branch and before the classifier"),
                Param("allow_missing_transcripts", bool, False, "embed an empty string where a transcript is missing"),
            ),
            version="2",
            citation=CITATION,
            meta={"paper": "Diatlova et al., Odyssey 2024", "default_pooling": "mean", "default_loss": "weighted_ce", "needs": _needs,
                  "reported": REPORTED, "recipe": RECIPE},
        )
    ]
