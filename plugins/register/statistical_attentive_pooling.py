"""Registers statistical_attentive_pooling: specs only, so that listing plugins imports no torch; the
implementation, :mod:`serbench_plugins.poolings.statistical_attentive`, is imported when the plugin is built."""

from __future__ import annotations

from serbench import Param, Spec, hookimpl


@hookimpl
def register_poolings() -> list[Spec]:
    return [
        Spec(
            name="sap_stat",
            factory="serbench_plugins.poolings.statistical_attentive:StatisticalAttentivePooling",
            summary="statistical attentive pooling: K attention heads, L2-normalised mean and variance",
            params=(Param("heads", int, 4, "attention heads K", bounds=">= 1"),),
            version="1",
            citation="Song, McLoughlin, Gu, Jiang & Song, WAP-LA adapter for SER",
        )
    ]
