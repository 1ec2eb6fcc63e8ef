"""Registers tiny: specs only, so that listing plugins imports no torch; the
implementation, :mod:`serbench_plugins.upstreams.tiny`, is imported when the plugin is built."""

from __future__ import annotations

from serbench import Param, Spec, hookimpl


@hookimpl
def register_upstreams() -> list[Spec]:
    return [
        Spec(
            name="tiny",
            factory="serbench_plugins.upstreams.tiny:make_tiny",
            summary="small random WavLM (transformers), for tests and smoke runs",
            params=(
                Param("depth", int, 2, "transformer layers", bounds=">= 1"),
                Param("dim", int, 32, "hidden width", bounds=">= 1"),
                Param("heads", int, 2, "attention heads", bounds=">= 1"),
                Param("seed", int, 0, "seed of the random initialisation", bounds=">= 0"),
            ),
            version="2",
        )
    ]
