"""Registers wavlm_cond: specs only, so that listing plugins imports no torch; the
implementation, :mod:`serbench_plugins.wavlm_cond.model`, is imported when the plugin is built."""

from __future__ import annotations

from serbench.api import DownstreamMeta, Param, Spec, hookimpl
from serbench.api.recipes import Recipe

GENDER_MODES = ("none", "sum", "sum_half", "mul", "stack_linear", "cln")

TEXT_MODES = ("none", "sum_third", "mul", "cln")

CITATION = "Diatlova, Udalov, Shutov & Spirin, Adapting WavLM for Speech Emotion Recognition, Odyssey 2024, arXiv:2405.04485"

# MSP-Podcast Development, macro-F1 as a fraction. The paper does not state which MSP-Podcast
# release it used nor how many Development utterances it scored (no paper text or note in this
# repository says), so a measured run is shown beside these rows as not comparable until it does.
_DEV = {"protocol": "msp_podcast", "metric": "macro_f1", "split": "Development", "ci95": None, "unit": "fraction",
        "encoder": "WavLM Large, fine-tuned", "corpus": "MSP-Podcast", "release": None, "n_test": None,
        # the paper names WavLM Large, which was released once (WavLM-Large.pt in microsoft/unilm, the same
        # weights as the Hub's microsoft/wavlm-large, serbench's wavlm_large)
        "checkpoint": "microsoft/wavlm-large"}


def _single(pooling: str, gender: str = "none", text: str = "none") -> dict:
    """What a single-model row means, as the run's resolved settings: the pooling, the
    conditioning (a text mode replaces the gender mode) and the paper's linear projection."""
    return {"pooling": pooling, "downstream.gender": gender, "downstream.text": text, "downstream.projection": "linear"}


REPORTED = [
    {"variant": "pooling=mean", "settings": _single("mean"), "pooling": "mean", "value": 0.30, **_DEV},
    {"variant": "pooling=std", "settings": _single("std"), "pooling": "std", "value": 0.31, **_DEV},
    {"variant": "pooling=attention", "settings": _single("attention"), "pooling": "attention", "value": 0.28, **_DEV},
    {"variant": "gender=sum", "settings": _single("std", gender="sum"), "pooling": "std", "value": 0.32, **_DEV},
    {"variant": "gender=sum_half", "settings": _single("std", gender="sum_half"), "pooling": "std", "value": 0.32, **_DEV},
    {"variant": "gender=mul", "settings": _single("std", gender="mul"), "pooling": "std", "value": 0.31, **_DEV},
    {"variant": "gender=stack_linear", "settings": _single("std", gender="stack_linear"), "pooling": "std", "value": 0.29, **_DEV},
    {"variant": "gender=cln", "settings": _single("std", gender="cln"), "pooling": "std", "value": 0.31, **_DEV},
    {"variant": "text=sum_third", "settings": _single("std", text="sum_third"), "pooling": "std", "value": 0.31, **_DEV},
    {"variant": "text=mul", "settings": _single("std", text="mul"), "pooling": "std", "value": 0.30, **_DEV},
    {"variant": "text=cln", "settings": _single("std", text="cln"), "pooling": "std", "value": 0.31, **_DEV},
    # a late fusion (serbench fuse) of five wavlm_cond runs: it pairs with a fused result only
    {"variant": "fusion of five models", "settings": {"fused_runs": 5}, "pooling": "five systems", "value": 0.35, **_DEV},
]

RECIPE = Recipe(
    overrides={"upstream.finetune": True, "upstream.lr": 1e-5, "train.lr": 1e-5, "train.weight_decay": 0.01,
               "train.max_epochs": 20, "train.patience": 20, "train.batch_size": 32, "train.crop_seconds": 5.0,
               "train.select_split": "test"},
    pooling="std",
    source="Diatlova et al. 2024: WavLM Large fine-tuned at lr 1e-5, 20 epochs, batch 32, random 5 s crops; STD "
           "pooling, as in its gender and text rows; scores reported on MSP-Podcast's Development at the best epoch "
           "there, mean over seeds (so every epoch is evaluated: patience 20, and the epoch is selected on "
           "Development when the run scores Development; each seed selects its own, the summary is their mean)",
    suggested={"upstream": "wavlm_large", "protocol": "msp_podcast -o protocol.test_set=Development"},
    demo={"upstream.finetune": False, "train.max_epochs": 20, "train.lr": 1e-3},
    demo_why="a demo's encoder is a small random one, not WavLM Large: it has nothing to adapt, and fine-tuning it "
             "for 3 epochs left the head at chance (UA 35.6% on synthetic); the demo keeps it frozen (cached "
             "features) and trains the unchanged head for 20 epochs at the harness's lr 1e-3 (UA 50.9%)",
    own_choices={
        "optimiser AdamW": "the harness's optimiser; not taken from the paper",
        "weight decay 0.01": "the harness's AdamW default; not taken from the paper",
        "gradient clipping 5": "the harness's default (train.grad_clip); not taken from the paper",
        "LayerDrop 0": "fine-tuning turns the checkpoint's LayerDrop off so every layer's hidden state exists "
                       "for the layer average; not taken from the paper",
        "constant learning rate": "no warm-up or decay (train.schedule constant); not taken from the paper",
        "text encoder all-MiniLM-L6-v2": "an English sentence encoder that ships offline; the paper's text "
                                         "encoder is a multilingual one",
        "conditional layer norm divides by the standard deviation": "as layer norm does; the paper's formula "
                                                                     "as read here divides by the variance",
        "unknown gender": "a third learned embedding; the paper's corpus gives every utterance a gender",
        "training on Train less the dev carve-out": "with protocol.test_set=Development, msp_podcast holds a "
                                                    "speaker-disjoint 10% of Train out as dev (kept for fusion "
                                                    "weights); the paper trained on all of Train",
    },
    only_when_scored_on={"train.select_split": ("Development",)},
)


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
            factory="serbench_plugins.wavlm_cond.model:WavLMConditioned",
            summary="WavLM layer average, projection, pooling, gender/text conditioning (Diatlova et al. 2024)",
            params=(
                Param("projection", str, "linear", "linear (the paper) or mlp (the challenge baseline)", ("linear", "mlp")),
                Param("hidden", int, 256, "width of the pooled vector that is conditioned (the projection is half as wide under std/attention pooling)", bounds=">= 2"),
                Param("gender", str, "none", "gender conditioning", GENDER_MODES),
                Param("text", str, "none", "text conditioning (includes the gender embedding)", TEXT_MODES),
                Param("dropout", float, 0.1, "dropout in the projection (mlp), text branch and before the classifier", bounds="[0, 1)"),
                Param("allow_missing_transcripts", bool, False, "embed an empty string where a transcript is missing"),
            ),
            version="4",
            citation=CITATION,
            meta=DownstreamMeta(paper="Diatlova et al., Odyssey 2024", default_pooling="mean", default_loss="weighted_ce", needs=_needs,
                                reported=REPORTED, recipe=RECIPE,
                                # --task dimensional: the classifier becomes one linear output per dimension
                                dimensions=("*",)),
        )
    ]
