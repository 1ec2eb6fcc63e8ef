"""Registers am_softmax: specs only, so that listing plugins imports no torch; the
implementation, :mod:`serbench_plugins.losses.am_softmax`, is imported when the plugin is built."""

from __future__ import annotations

from serbench.api import Param, Spec, hookimpl


@hookimpl
def register_losses() -> list[Spec]:
    return [
        Spec(
            name="am_softmax",
            factory="serbench_plugins.losses.am_softmax:make",
            summary="additive-margin softmax on cosine similarities (m = 0.2, s = 30)",
            params=(Param("margin", float, 0.2, "additive margin m", bounds=">= 0"), Param("scale", float, 30.0, "scale s", bounds="> 0")),
            version="1",
            citation="Wang, Cheng, Liu & Liu, Additive Margin Softmax for Face Verification, IEEE SPL 2018",
        )
    ]
