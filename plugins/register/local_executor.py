"""Registers the ``local`` executor: specs only; the implementation,
:mod:`serbench_plugins.executors.local`, is imported when it is built."""

from __future__ import annotations

from serbench.hookspecs import hookimpl
from serbench.specs import Param, Spec


@hookimpl
def register_executors() -> list[Spec]:
    return [
        Spec(
            name="local",
            factory="serbench_plugins.executors.local:LocalExecutor",
            summary="this machine: in this process, or in N worker processes sharing the run by job claims",
            params=(
                Param("workers", int, 1, "processes running jobs at once (this one included)"),
                Param("threads", int, 0, "torch threads per worker (0: the cores divided by the workers)"),
            ),
            version="1",
        )
    ]
