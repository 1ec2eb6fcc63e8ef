"""Registers losses: specs only, so that listing plugins imports no torch; the
implementation, :mod:`serbench_plugins.losses.classification`, is imported when the plugin is built."""

from __future__ import annotations

from serbench.api import Param, Spec, hookimpl


@hookimpl
def register_losses() -> list[Spec]:
    return [
        Spec(name="ce", factory="serbench_plugins.losses.classification:make_ce", summary="cross-entropy"),
        Spec(
            name="weighted_ce",
            factory="serbench_plugins.losses.classification:make_weighted_ce",
            summary="cross-entropy with class weights N / (C * n_c) from the training split",
        ),
        Spec(
            name="label_smoothing",
            factory="serbench_plugins.losses.classification:make_label_smoothing",
            summary="cross-entropy with label smoothing over the other classes, optionally class-weighted "
                    "(each utterance by its own class's weight)",
            version="3",
            params=(
                Param("smoothing", float, 0.1, "target mass moved from the true class to the others, evenly", bounds="[0, 1)"),
                Param("weighted", bool, True, "class weights N / (C * n_c) as in weighted_ce"),
            ),
        ),
    ]
