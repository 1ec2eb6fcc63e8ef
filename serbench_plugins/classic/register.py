"""Registers the classic heads ``svm`` and ``logreg``: specs only, so that listing plugins
imports neither torch nor scikit-learn; the implementation, :mod:`serbench_plugins.classic.model`,
is imported when the plugin is built."""

from __future__ import annotations

from serbench.api import DownstreamMeta, Param, Spec, hookimpl

SVM_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)  # the ComParE baselines' liblinear range
LOGREG_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
_COMMON = "scikit-learn on standardised pooled features, C chosen on dev, balanced class weights"


def _params(grid: tuple, max_iter: int) -> tuple[Param, ...]:
    return (
        Param("grid", tuple, grid, "values of C tried; the best on dev by the main metric is kept (the plugin's own grid)",
              item=float),
        Param("layer", int, -1, "which kept hidden state is pooled (-1: the last; see upstream.layers)"),
        Param("max_iter", int, max_iter, "solver iterations per C (runs that stop short are counted in the log)",
              bounds=">= 1"),
    )


@hookimpl
def register_downstreams() -> list[Spec]:
    return [
        Spec(
            name="svm",
            factory="serbench_plugins.classic.model:make_svm",
            summary=f"linear SVM (LinearSVC): {_COMMON}; probabilities = softmax of its margins",
            params=_params(SVM_GRID, 10_000),
            version="1",
            citation="Schuller et al., The INTERSPEECH 2016 ComParE Challenge (linear-SVM baseline); "
                     "Fan et al., LIBLINEAR, JMLR 2008",
            meta=DownstreamMeta(default_pooling="mean", default_loss="ce"),
        ),
        Spec(
            name="logreg",
            factory="serbench_plugins.classic.model:make_logreg",
            summary=f"logistic regression (lbfgs, multinomial): {_COMMON}",
            params=_params(LOGREG_GRID, 1_000),
            version="1",
            citation="scikit-learn: Pedregosa et al., JMLR 2011",
            meta=DownstreamMeta(default_pooling="mean", default_loss="ce"),
        ),
    ]
