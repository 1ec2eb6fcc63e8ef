"""Registers multitask_loss: specs only, so that listing plugins imports no torch; the
implementation, :mod:`serbench_plugins.losses.multitask`, is imported when the plugin is built."""

from __future__ import annotations

from serbench.api import LossMeta, Param, Spec, hookimpl


@hookimpl
def register_losses() -> list[Spec]:
    return [
        Spec(
            name="mtl",
            factory="serbench_plugins.losses.multitask:make",
            summary="class-weighted CE + MAE on valence and arousal (needs dimensional labels)",
            params=(
                Param("ce", float, 0.5, "weight of the class-weighted cross-entropy", bounds=">= 0"),
                Param("valence", float, 0.25, "weight of the valence MAE", bounds=">= 0"),
                Param("arousal", float, 0.25, "weight of the arousal MAE", bounds=">= 0"),
            ),
            version="1",
            citation="Hyeon, Oh & Choi, Interspeech 2024",
            meta=LossMeta(needs=("attributes",)),
        )
    ]
