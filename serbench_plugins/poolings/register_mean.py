"""Registers poolings: specs only, so that listing plugins imports no torch; the
implementation, :class:`serbench.api.blocks.MeanPooling` (a core block other plugins build on), is imported when the plugin is built."""

from __future__ import annotations

from serbench.api import Spec, hookimpl


@hookimpl
def register_poolings() -> list[Spec]:
    return [Spec(name="mean", factory="serbench.api.blocks:MeanPooling", summary="masked mean over valid frames")]
