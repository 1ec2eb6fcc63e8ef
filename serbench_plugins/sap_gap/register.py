"""Registers sap_gap and its segmental pooling: specs only, so that listing plugins imports no
torch; the implementations, :mod:`serbench_plugins.sap_gap.model` and
:mod:`serbench_plugins.sap_gap.segmental`, are imported when the plugin is built."""

from __future__ import annotations

from serbench.api import DownstreamMeta, Param, PoolingMeta, Spec, hookimpl
from serbench.api.recipes import Recipe

CITATION = "Hyeon, Oh & Choi, Enhancing SER through Segmental Average Pooling of SSL features, Interspeech 2024"

_ROW = {"protocol": "iemocap_loso10", "split": "test speaker", "encoder": "WavLM Large, fine-tuned", "unit": "%",
        # the paper names WavLM Large, which was released once (WavLM-Large.pt in microsoft/unilm, the
        # same weights as the Hub's microsoft/wavlm-large, serbench's wavlm_large)
        "checkpoint": "microsoft/wavlm-large",
        # one release; no test-split size stated: the protocol's published counts check the copy
        "corpus": "IEMOCAP", "release": "full release (its only one)", "n_test": None}

REPORTED = [  # IEMOCAP 10-fold leave-one-speaker-out, WavLM Large fine-tuned; mean (95% CI)
    {"variant": "mode=gap", "settings": {"downstream.mode": "gap"}, "pooling": "GAP", "metric": "ua", "value": 73.87, "ci95": [71.34, 76.39], **_ROW},
    {"variant": "mode=gap", "settings": {"downstream.mode": "gap"}, "pooling": "GAP", "metric": "wa", "value": 73.27, "ci95": [70.90, 75.64], **_ROW},
    {"variant": "mode=sap", "settings": {"downstream.mode": "sap"}, "pooling": "SAP", "metric": "ua", "value": 73.48, "ci95": [71.13, 75.83], **_ROW},
    {"variant": "mode=sap", "settings": {"downstream.mode": "sap"}, "pooling": "SAP", "metric": "wa", "value": 72.45, "ci95": [70.34, 74.57], **_ROW},
    {"variant": "mode=sr", "settings": {"downstream.mode": "sr"}, "pooling": "GAP + SAP", "metric": "ua", "value": 75.57, "ci95": [72.25, 78.89], **_ROW},
    {"variant": "mode=sr", "settings": {"downstream.mode": "sr"}, "pooling": "GAP + SAP", "metric": "wa", "value": 74.77, "ci95": [72.02, 77.52], **_ROW},
]

RECIPE = Recipe(
    overrides={"upstream.finetune": True, "upstream.lr": 3e-5, "train.lr": 3e-5, "train.batch_size": 64,
               "train.max_epochs": 30, "train.patience": 5, "train.warmup_ratio": 0.1, "train.schedule": "cosine",
               "train.select_on": "loss", "train.max_seconds": 19.0},
    source="Hyeon et al. 2024: WavLM Large fine-tuned with the head at lr 3e-5, batch 64, 30 epochs, early "
           "stopping on dev loss (patience 5), 10% warm-up then cosine, utterances truncated to 19 s",
    suggested={"upstream": "wavlm_large", "protocol": "iemocap_loso10"},
    demo={"train.max_epochs": 10, "train.lr": 1e-3, "downstream.heads": 2},
    demo_why="the demo corpus is a tenth of IEMOCAP and its heads start from scratch on a frozen front-end, "
             "where the paper fine-tunes a pretrained encoder: 10 epochs at the harness's head learning rate; "
             "2 SAP heads, as 8 heads on 80-d fbank frames are 10 wide (the paper's are 128) and 4x slower on a CPU",
    own_choices={
        "optimiser AdamW": "the harness's optimiser; not taken from the paper",
        "weight decay 0.01": "the harness's AdamW default; not taken from the paper",
        "gradient clipping 5": "the harness's default (train.grad_clip); not taken from the paper",
        "LayerDrop 0": "fine-tuning turns the checkpoint's LayerDrop off so every layer's hidden state exists; "
                       "not taken from the paper",
        "valence/arousal targets (x - 1) / 4": "IEMOCAP's 1-5 ratings scaled to [0, 1] for the MAE regressors; "
                                               "the paper does not say how it scales them",
        "frames from the last layer, 32-d projection Linear + ReLU": "downstream.layer and the projection's "
                                                                    "activation; the paper does not say",
    },
)


@hookimpl
def register_downstreams() -> list[Spec]:
    return [
        Spec(
            name="sap_gap",
            factory="serbench_plugins.sap_gap.model:SapGap",
            summary="SAP+GAP (Hyeon et al. 2024): VAD-gated self-attention mean + global mean, MTL heads",
            params=(
                Param("mode", str, "sr", "sr = concat(GAP, SAP) (the method); gap or sap alone", ("sr", "gap", "sap")),
                Param("layer", str, "last", "encoder layer used: last, or a learned weighting of all", ("last", "weighted")),
                Param("projection", int, 32, "width of the shared projection", bounds=">= 1"),
                Param("heads", int, 8, "SAP attention heads", bounds=">= 1"),
                Param("dropout", float, 0.1, "dropout in SAP and after the projection", bounds="[0, 1)"),
                Param("vad_aggressiveness", int, 3, "WebRTC VAD aggressiveness, 0 to 3", (0, 1, 2, 3)),
            ),
            version="3",
            citation=CITATION,
            meta=DownstreamMeta(paper="Hyeon et al., Interspeech 2024", default_loss="mtl", own_pooling="GAP + SAP (segmental)", needs=("vad", "attributes"), reported=REPORTED, recipe=RECIPE),
        )
    ]


@hookimpl
def register_poolings() -> list[Spec]:
    """SAP+GAP's segmental pooling, also usable on its own as ``--pooling segmental``."""
    return [
        Spec(
            name="segmental",
            factory="serbench_plugins.sap_gap.segmental:SegmentalPooling",
            summary="SAP: multi-head self-attention over VAD speech frames, then their mean",
            params=(
                Param("heads", int, 8, "attention heads", bounds=">= 1"),
                Param("dropout", float, 0.1, "dropout on the attention output", bounds="[0, 1)"),
                Param("vad_aggressiveness", int, 3, "WebRTC VAD aggressiveness, 0 (lenient) to 3 (strict)", (0, 1, 2, 3)),
            ),
            version="2",
            citation=CITATION,
            meta=PoolingMeta(needs=("vad",)),
        )
    ]
