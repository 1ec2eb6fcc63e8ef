"""Registers the regression losses of ``--task dimensional``: specs only, so that listing plugins
imports no torch; the implementation, :mod:`serbench_plugins.losses.regression`, is imported
when the plugin is built."""

from __future__ import annotations

from serbench.api import LossMeta, Spec, hookimpl


@hookimpl
def register_losses() -> list[Spec]:
    return [
        Spec(
            name="ccc",
            factory="serbench_plugins.losses.regression:make_ccc",
            summary="1 - concordance correlation coefficient per dimension, averaged (--task dimensional)",
            citation="Lin, Biometrics 45(1), 1989 (the coefficient)",
            meta=LossMeta(tasks=("dimensional",)),
        ),
        Spec(
            name="mse",
            factory="serbench_plugins.losses.regression:make_mse",
            summary="mean squared error over utterances and dimensions (--task dimensional)",
            meta=LossMeta(tasks=("dimensional",)),
        ),
    ]
