"""Registers poolings: specs only, so that listing plugins imports no torch; the
implementation, :class:`serbench.blocks.MeanPooling` (a core block other plugins build on), is imported when the plugin is built."""

from __future__ import annotations

from serbench import Spec, hookimpl


@hookimpl
def register_poolings() -> list[Spec]:
    return [Spec(name="mean", factory="serbench.blocks:MeanPooling", summary="masked mean over valid frames")]
