"""Registers gmp_atl: specs only, so that listing plugins imports no torch; the
implementation, :mod:`serbench_plugins.gmp_atl.model`, is imported when the plugin is built."""

from __future__ import annotations

from serbench.api import DownstreamMeta, Param, Spec, hookimpl
from serbench.api.recipes import Recipe
from serbench.api.stage_recipes import StageRecipe

# IEMOCAP has one release; the paper states no test-split size, so serbench's own check of the
# copy against the protocol's published counts (annotations.corpus_differs) guards the pairing.
_ROW = {"protocol": "iemocap_5fold", "split": "test session", "encoder": "HuBERT Base (ls960), fine-tuned",
        "pooling": "BiLSTM + mean", "unit": "%", "corpus": "IEMOCAP", "release": "full release (its only one)",
        "n_test": None,
        # the paper's footnote names it: pre-trained on LibriSpeech 960 h, not fine-tuned for ASR
        "checkpoint": "facebook/hubert-base-ls960",
        "train_split": "the four training sessions (no dev carve-out is described)"}

_FULL = {"downstream.multitask": True, "downstream.pseudo_labels": True}
_WITHOUT_GMPS = {"downstream.multitask": False, "downstream.pseudo_labels": False}  # the layer is then unused


def _layer(k: int, loss: str = "am_softmax") -> dict:
    return {**_FULL, "downstream.layer": k, "loss": loss}


REPORTED = [  # IEMOCAP 5-fold leave-one-session-out; UAR / WAR in percent
    {"variant": variant, "settings": settings, "metric": metric, "value": value, "ci95": None, **_ROW}
    for variant, settings, values in [
        ("full (layer -3)", _layer(-3), (82.0, 80.0)),
        ("CE without GMPs", {**_WITHOUT_GMPS, "loss": "ce"}, (78.0, 75.8)),
        ("AMS without GMPs", {**_WITHOUT_GMPS, "loss": "am_softmax"}, (79.8, 77.6)),
        ("GMPs + CE", _layer(-3, loss="ce"), (80.2, 78.4)),
        ("layer -1", _layer(-1), (80.4, 79.0)), ("layer -2", _layer(-2), (80.2, 79.7)),
        ("layer -4", _layer(-4), (81.9, 79.7)), ("layer -5", _layer(-5), (80.6, 78.6)),
        ("layer -6", _layer(-6), (80.6, 78.1)), ("layer -7", _layer(-7), (81.2, 79.5)),
        ("layer -8", _layer(-8), (80.6, 79.3)),
    ]
    for metric, value in zip(("ua", "wa"), values)
]

# The paper states Adam at lr 1e-4 for encoder and heads and batch 64; it gives no epochs,
# schedule, stopping rule, gradient clipping or layer widths for any stage: those are this plugin's.
_OWN_STOP = "none: every epoch runs, the last weights go on (no dev selection inside a stage)"
STAGES = (
    StageRecipe("multitask", optimiser="Adam", lr="downstream.stage_lr", schedule="constant",
                epochs="downstream.stage1_epochs", batch="downstream.stage_batch_size", stopping=_OWN_STOP,
                runs_if="downstream.multitask", paper=("optimiser", "lr", "batch"),
                notes="no gradient clipping in stages 1 and 2; BiLSTM {downstream.lstm_hidden} per direction and "
                      "LinearP {downstream.hidden} wide: the plugin's choices"),
    StageRecipe("pseudo_labels", optimiser="none (k-means, no gradient step)", lr=None,
                schedule="none", epochs=None, batch="downstream.stage_batch_size",
                stopping="k-means: 50 Lloyd iterations at most, or a relative inertia change <= 1e-6",
                runs_if="downstream.pseudo_labels", paper=(),
                notes="scales {downstream.scales} on layer {downstream.layer} (the paper's); at most "
                      "{downstream.kmeans_frames} frames, seeded k-means++: the plugin's choices"),
    StageRecipe("masked_prediction", optimiser="Adam", lr="downstream.stage_lr", schedule="constant",
                epochs="downstream.stage2_epochs", batch="downstream.stage_batch_size", stopping=_OWN_STOP,
                runs_if="downstream.pseudo_labels", paper=("optimiser", "lr", "batch"),
                notes="span masks mask_prob {downstream.mask_prob}, length {downstream.mask_length} (HuBERT's); "
                      "no gradient clipping: the plugin's choice"),
    StageRecipe("supervised", optimiser="AdamW, weight decay {train.weight_decay} (0: Adam)", lr="train.lr",
                encoder_lr="upstream.lr", schedule="{train.schedule}", epochs="train.max_epochs",
                batch="train.batch_size",
                stopping="patience {train.patience} epochs on the dev {train.select_on}; the best-on-dev epoch's "
                         "weights are kept",
                paper=("optimiser", "lr", "encoder_lr", "batch"),
                notes="epochs, patience, schedule, gradient clipping at {train.grad_clip} and the dev carve-out of "
                      "the training sessions (protocol.dev_fraction of their utterances, stratified) that selects "
                      "the epoch are the plugin's choices (the harness's defaults)"),
)

RECIPE = Recipe(
    overrides={"train.lr": 1e-4, "upstream.lr": 1e-4, "train.weight_decay": 0.0, "train.batch_size": 64},
    loss="am_softmax",
    source="Pan et al. 2024: Adam (AdamW without weight decay) at lr 1e-4 for encoder and heads, batch 64, "
           "AM-Softmax in the final stage",
    suggested={"upstream": "hubert_base", "protocol": "iemocap_5fold"},
    demo={"downstream.stage1_epochs": 1, "downstream.stage2_epochs": 1, "downstream.scales": (8, 16, 32),
          "downstream.lstm_hidden": 32, "downstream.hidden": 32, "train.max_epochs": 6, "train.batch_size": 16,
          "train.lr": 1e-3, "upstream.lr": 1e-3},
    demo_why="a demo fine-tunes a small random encoder on a tenth of IEMOCAP's frames: one epoch per stage, "
             "k-means at 8/16/32, BiLSTM and LinearP 32 wide (a 256-wide BiLSTM is sequential work a CPU "
             "does slowly); the final stage 6 epochs at batch 16 with heads and encoder at lr 1e-3, enough "
             "steps for a random encoder to learn (3 epochs at batch 64 and lr 1e-4 ended at chance)",
    stages=STAGES,
)


@hookimpl
def register_downstreams() -> list[Spec]:
    return [
        Spec(
            name="gmp_atl",
            factory="serbench_plugins.gmp_atl.model:GmpAtl",
            summary="GMP-ATL: gender multi-task, multi-scale k-means pseudo-labels, masked prediction, AM-Softmax",
            params=(
                Param("scales", tuple, (64, 512, 4096), "k-means cluster counts", item=int, bounds=">= 2"),
                Param("layer", int, -3, "hidden state clustered for pseudo-labels (-3: third-to-last)"),
                Param("alpha_e", float, 0.9, "emotion weight in stage 1 (gender: 1 - alpha_e)", bounds="[0, 1]"),
                Param("pseudo_labels", bool, True, "run the pseudo-labelling and masked-prediction stages"),
                Param("multitask", bool, True, "run the gender-augmented multi-task stage"),
                Param("lstm_hidden", int, 256, "BiLSTM width per direction", bounds=">= 1"),
                Param("hidden", int, 256, "LinearP width", bounds=">= 1"),
                Param("stage1_epochs", int, 10, "multi-task epochs", bounds=">= 0"),
                Param("stage2_epochs", int, 10, "masked-prediction epochs", bounds=">= 0"),
                Param("stage_lr", float, 1e-4, "Adam learning rate of stages 1 and 2", bounds="> 0"),
                Param("stage_batch_size", int, 64, "batch size of stages 1 and 2 and of the pseudo-labelling", bounds=">= 1"),
                Param("mask_prob", float, 0.8, "mask_prob of transformers' span formula (HuBERT's 0.8: about half the frames)", bounds="[0, 1]"),
                Param("mask_length", int, 10, "masked span length in frames", bounds=">= 1"),
                Param("kmeans_frames", int, 500_000, "frames drawn for k-means at most", bounds=">= 1"),
            ),
            version="4",
            citation="Pan, Yang, Lu, Ma & Zhao, GMP-ATL, Interspeech 2024",
            meta=DownstreamMeta(paper="Pan et al., Interspeech 2024", upstream="finetune", default_loss="am_softmax",
                                own_pooling="BiLSTM + masked mean", spec_augment=False,
                                needs=("gender",), reported=REPORTED, recipe=RECIPE),
        )
    ]
