"""Registers tiny: specs only, so that listing plugins imports no torch; the
implementation, :mod:`serbench_plugins.upstreams.tiny`, is imported when the plugin is built."""

from __future__ import annotations

from serbench.hookspecs import hookimpl
from serbench.specs import Param, Spec


@hookimpl
def register_upstreams() -> list[Spec]:
    return [
        Spec(
            name="tiny",
            factory="serbench_plugins.upstreams.tiny:make_tiny",
            summary="small random WavLM (transformers), for tests and smoke runs",
            params=(
                Param("depth", int, 2, "transformer layers"),
                Param("dim", int, 32, "hidden width"),
                Param("heads", int, 2, "attention heads"),
                Param("seed", int, 0, "seed of the random initialisation"),
            ),
            version="2",
        )
    ]
