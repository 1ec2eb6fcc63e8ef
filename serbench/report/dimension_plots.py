"""Figures of a dimensional result (``--task dimensional``): what ``serbench plot`` and the site
draw in place of the confusion matrix and the class metrics.

- ``forest``: per dimension, the CCC and Pearson r, each mean over folds with both 95% intervals
  (Student-t over folds, and the cluster interval), on the correlations' own axis [-1, 1];
  the mean CCC on top;
- ``scatter``: per dimension, every test prediction against its reference on the protocol's
  [0, 1] scale, the identity line, and the pooled CCC, Pearson r and MAE in the panel's title:
  the predicted-vs-true scatter nkululeko draws for a regression experiment, one panel per
  dimension;
- ``per_fold``: each dimension's CCC per fold (every seed a point, the fold's mean a bar).

:func:`draw_systems` is the suite-level forest plot of one comparability group of dimensional
runs: one panel per CCC (the mean, then each dimension), every run a row.
Nothing here rescales a correlation to percent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from serbench.report.dimension_results import dimensions_of
from serbench.report.dimension_stats import clipped
from serbench.report.dimensions import MAIN_METRIC, ccc, mae, pearson
from serbench.report.results import Result

INTERVALS = ((-0.12, "ci95", "#4c72b0", "t over folds"), (0.12, "ci95_bootstrap", "#dd8452", "cluster interval"))


def _interval_row(ax, entry: dict, row: float, metric: str, legend: bool) -> None:
    """One metric's mean with its two intervals, each clipped to the metric's range."""
    for offset, key, color, label in INTERVALS:
        interval = clipped(entry.get(key), metric)
        if interval:
            ax.plot(interval, [row + offset] * 2, color=color, lw=2, label=label if legend else None)
        ax.plot(entry["mean"], row + offset, "o", color=color)


def forest(plt, result: Result, records: list[dict]):
    """Mean CCC, then CCC and Pearson r per dimension, with both intervals."""
    dims = dimensions_of(result.data)
    metrics = [MAIN_METRIC] + [f"{kind}_{d}" for d in dims for kind in ("ccc", "pearson")]
    figure, ax = plt.subplots(figsize=(5.5, 1.0 + 0.4 * len(metrics)))
    for row, metric in enumerate(metrics):
        _interval_row(ax, result.summary[metric], row, metric, legend=row == 0)
    ax.axvline(0.0, color="#999", lw=0.8)
    ax.set_yticks(range(len(metrics)), metrics)
    ax.set_xlim(-1.0, 1.0)
    ax.invert_yaxis()
    ax.set_xlabel("mean over folds, 95% intervals (clipped to [-1, 1])")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    speakers = result.summary[MAIN_METRIC].get("speakers")
    ax.set_title("CCC and Pearson r per dimension" + (f" ({speakers} speakers)" if speakers else ""))
    return figure


def scatter(plt, result: Result, predictions: pd.DataFrame):
    """Predicted against true per dimension, every (fold, seed) job's test predictions together."""
    dims = dimensions_of(result.data)
    figure, axes = plt.subplots(1, len(dims), figsize=(3.2 * len(dims), 3.4), squeeze=False)
    for ax, d in zip(axes[0], dims):
        truth = predictions[f"true_{d}"].to_numpy(dtype=np.float64)
        guess = predictions[f"pred_{d}"].to_numpy(dtype=np.float64)
        ax.scatter(truth, guess, s=8, alpha=0.5, color="#4c72b0", edgecolors="none")
        low, high = min(0.0, truth.min(), guess.min()), max(1.0, truth.max(), guess.max())
        ax.plot([low, high], [low, high], color="#999", lw=0.8, ls="--")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_aspect("equal")
        ax.set_xlabel(f"true {d}")
        ax.set_ylabel(f"predicted {d}")
        ax.set_title(f"{d}: CCC {ccc(guess, truth):.3f}, r {pearson(guess, truth):.3f}, MAE {mae(guess, truth):.3f}",
                     fontsize=8)
    return figure


def per_fold(plt, result: Result, records: list[dict]):
    """Each dimension's CCC per fold: seeds as points, the fold's mean as a bar."""
    dims = dimensions_of(result.data)
    folds = list(dict.fromkeys(str(r["fold"]) for r in records))
    figure, axes = plt.subplots(1, len(dims), figsize=(3.0 * len(dims), 2.8), sharey=True, squeeze=False)
    for ax, d in zip(axes[0], dims):
        metric = f"ccc_{d}"
        means = [float(np.mean([r["metrics"][metric] for r in records if str(r["fold"]) == f])) for f in folds]
        ax.bar(range(len(folds)), means, color="#c7d3e8")
        for r in records:
            ax.plot(folds.index(str(r["fold"])), r["metrics"][metric], "o", color="#4c72b0", ms=4)
        ax.axhline(0.0, color="#999", lw=0.8)
        ax.set_xticks(range(len(folds)), folds)
        ax.set_xlabel("fold")
        ax.set_ylim(-1.0, 1.0)
        ax.set_title(metric)
    axes[0][0].set_ylabel("CCC (points: seeds; bars: fold mean)")
    return figure


def draw_systems(plt, runs: list[Result], labels: list[str], heading: str):
    """One panel per CCC (mean, then each dimension the runs share), every run a row."""
    shared = [d for d in dimensions_of(runs[0].data) if all(d in dimensions_of(r.data) for r in runs)]
    metrics = [MAIN_METRIC] + [f"ccc_{d}" for d in shared]
    figure, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics) + 3.0, 1.0 + 0.45 * len(runs)),
                                sharey=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for row, r in enumerate(runs):
            _interval_row(ax, r.summary[metric], row, metric, legend=row == 0)
        ax.axvline(0.0, color="#999", lw=0.8)
        ax.set_xlim(-1.0, 1.0)
        ax.set_title(metric, fontsize=8)
    axes[0][0].set_yticks(range(len(runs)), labels, fontsize=7)
    axes[0][0].invert_yaxis()
    axes[0][0].legend(fontsize=6, loc="lower left")
    figure.suptitle(heading, fontsize=8)
    figure.supxlabel("mean over folds, 95% intervals (clipped to [-1, 1])", fontsize=8)
    return figure
