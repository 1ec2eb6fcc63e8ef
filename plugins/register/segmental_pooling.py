"""Registers segmental_pooling: specs only, so that listing plugins imports no torch; the
implementation, :mod:`serbench_plugins.poolings.segmental`, is imported when the plugin is built."""

from __future__ import annotations

from serbench import Param, Spec, hookimpl

CITATION = "Hyeon, Oh & Choi, Enhancing SER through Segmental Average Pooling of SSL features, Interspeech 2024"


@hookimpl
def register_poolings() -> list[Spec]:
    return [
        Spec(
            name="segmental",
            factory="serbench_plugins.poolings.segmental:SegmentalPooling",
            summary="SAP: multi-head self-attention over VAD speech frames, then their mean",
            params=(
                Param("heads", int, 8, "attention heads", bounds=">= 1"),
                Param("dropout", float, 0.1, "dropout on the attention output", bounds="[0, 1)"),
                Param("vad_aggressiveness", int, 3, "WebRTC VAD aggressiveness, 0 (lenient) to 3 (strict)", (0, 1, 2, 3)),
            ),
            version="2",
            citation=CITATION,
            meta={"needs": ("vad",)},
        )
    ]
