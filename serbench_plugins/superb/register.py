"""Registers superb: specs only, so that listing plugins imports no torch; the
implementation, :mod:`serbench_plugins.superb.model`, is imported when the plugin is built."""

from __future__ import annotations

from serbench.api import DownstreamMeta, Param, Spec, hookimpl


@hookimpl
def register_downstreams() -> list[Spec]:
    return [
        Spec(
            name="superb",
            factory="serbench_plugins.superb.model:SuperbHead",
            summary="SUPERB ER head: weighted layer sum, linear projection, pooling, linear",
            params=(Param("hidden", int, 256, "projection width", bounds=">= 1"),),
            version="1",
            citation="Yang et al., SUPERB, Interspeech 2021, arXiv:2105.01051",
            meta=DownstreamMeta(default_pooling="mean"),
        )
    ]
