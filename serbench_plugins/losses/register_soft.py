"""Registers the soft-target loss: specs only, so that listing plugins imports no torch; the
implementation, :mod:`serbench_plugins.losses.soft_targets`, is imported when the plugin is built."""

from __future__ import annotations

from serbench.api import LossMeta, Param, Spec, hookimpl


@hookimpl
def register_losses() -> list[Spec]:
    return [
        Spec(
            name="soft_ce",
            factory="serbench_plugins.losses.soft_targets:make_soft_ce",
            summary="class-balanced cross-entropy against the raters' label distribution (EMO-SUPERB); "
                    "-o train.targets=soft picks it",
            params=(Param("balanced", bool, True, "weight each utterance by its distribution's class-balanced "
                          "weight (EMO-SUPERB's effective-number weights); false: plain soft cross-entropy"),),
            version="1",
            citation="Wu, Chou, Chang, Goncalves, Du, Jang, Lee & Lee, EMO-SUPERB: An In-depth Look at Speech "
                     "Emotion Recognition, arXiv:2402.13018, 2024",
            meta=LossMeta(needs=("soft_labels",), targets="soft"),
        )
    ]
