"""Registers multitask_loss: specs only, so that listing plugins imports no torch; the
implementation, :mod:`serbench_plugins.losses.multitask`, is imported when the plugin is built."""

from __future__ import annotations

from serbench.hookspecs import hookimpl
from serbench.specs import Param, Spec


@hookimpl
def register_losses() -> list[Spec]:
    return [
        Spec(
            name="mtl",
            factory="serbench_plugins.losses.multitask:make",
            summary="class-weighted CE + MAE on valence and arousal (needs dimensional labels)",
            params=(
                Param("ce", float, 0.5, "weight of the class-weighted cross-entropy"),
                Param("valence", float, 0.25, "weight of the valence MAE"),
                Param("arousal", float, 0.25, "weight of the arousal MAE"),
            ),
            version="1",
            citation="Hyeon, Oh & Choi, Interspeech 2024",
            meta={"needs": ("attributes",)},
        )
    ]
