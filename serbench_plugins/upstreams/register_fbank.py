"""Registers fbank: specs only, so that listing plugins imports no torch; the
implementation, :mod:`serbench_plugins.upstreams.fbank`, is imported when the plugin is built."""

from __future__ import annotations

from serbench.api import Param, Spec, UpstreamMeta, hookimpl


@hookimpl
def register_upstreams() -> list[Spec]:
    return [
        Spec(
            name="fbank",
            factory="serbench_plugins.upstreams.fbank:Fbank",
            summary="log-mel filterbank (25 ms / 10 ms), no pretraining: the floor to beat",
            params=(Param("n_mels", int, 80, "number of mel bins", bounds=">= 1"),),
            version="1",
            citation="Davis & Mermelstein 1980, doi:10.1109/TASSP.1980.1163420",
            meta=UpstreamMeta(trainable=False),
        )
    ]


