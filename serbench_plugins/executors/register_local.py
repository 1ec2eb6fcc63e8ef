"""Registers the ``local`` executor: specs only; the implementation,
:mod:`serbench_plugins.executors.local`, is imported when it is built."""

from __future__ import annotations

from serbench.api import Param, Spec, hookimpl


@hookimpl
def register_executors() -> list[Spec]:
    return [
        Spec(
            name="local",
            factory="serbench_plugins.executors.local:LocalExecutor",
            summary="this machine: in this process, or in a pool of N worker processes",
            params=(
                Param("workers", int, 1, "processes running units at once (1: in this process)", bounds=">= 1"),
                Param("threads", int, 0, "torch threads per worker (0: the cores divided by the workers)", bounds=">= 0"),
            ),
            version="2",
        )
    ]
