"""Registers statistics_pooling: specs only, so that listing plugins imports no torch; the
implementation, :mod:`serbench_plugins.poolings.statistics`, is imported when the plugin is built."""

from __future__ import annotations

from serbench.api import Spec, hookimpl


@hookimpl
def register_poolings() -> list[Spec]:
    cite = "Diatlova et al., Adapting WavLM for Speech Emotion Recognition, Odyssey 2024, arXiv:2405.04485"
    return [
        Spec(name="std", factory="serbench_plugins.poolings.statistics:StdPooling", summary="concat(mean, std) over valid frames", citation=cite),
        Spec(name="attention", factory="serbench_plugins.poolings.statistics:AttentionPooling",
             summary="attentive statistics: softmax(p . tanh(z)) weighted mean and std", citation=cite),
    ]
