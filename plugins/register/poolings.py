"""Registers poolings: specs only, so that listing plugins imports no torch; the
implementation, :mod:`serbench_plugins.poolings.basic`, is imported when the plugin is built."""

from __future__ import annotations

from serbench import Spec, hookimpl


@hookimpl
def register_poolings() -> list[Spec]:
    return [Spec(name="mean", factory="serbench_plugins.poolings.basic:MeanPooling", summary="masked mean over valid frames")]
