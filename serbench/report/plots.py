"""Figures of a finished run, with matplotlib (``pip install 'serbench[plot]'``), as SVG and PNG
(at ``PNG_DPI``, print resolution), or PDF on request (``--format pdf``).

``serbench plot RUN_DIR`` writes into ``RUN_DIR/figures/``:

- ``confusion``: the row-normalised confusion matrix over every job's test predictions
  (rows: reference label, columns: predicted label; each cell also gives its count);
- ``per_class_recall``: each class's recall, mean over folds with its 95% t interval;
- ``forest``: UA, WA and macro-F1, each mean with both 95% intervals (t over folds, and the
  cluster interval: folds or speakers as clusters), on one axis;
- ``per_fold``: each metric per fold (every seed a point, the fold's mean a bar);
- ``curves``: each job's dev criterion per epoch (the early-stopping curve), best epoch marked;
- ``reliability``: accuracy against confidence in 15 bins (:mod:`serbench.report.reliability`).

A dimensional result (``--task dimensional``) gets :mod:`serbench.report.dimension_plots`' figures
instead of the class ones: ``forest`` (CCC and Pearson r per dimension), ``scatter`` (predicted
against true per dimension), ``per_fold`` (CCC per dimension and fold), and the same ``curves``.

:func:`plot_systems` draws the suite-level forest plot: every run of one comparability group
(:mod:`serbench.report.ranking`) on one axis, labelled so that two poolings or two override sets of
a method are told apart, its main metric with both 95% intervals (the leaderboard site shows
it per group; a dimensional group gets one panel per CCC). Every interval drawn is clipped to
its metric's range ([0, 100] % for a proportion, [-1, 1] for a correlation).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from serbench.api.errors import SerbenchError
from serbench.api.work import Job
from serbench.report.dimension_results import is_dimensional
from serbench.report.leaderboard import COLUMNS
from serbench.report.ranking import clipped
from serbench.report.result_fields import missing_parts
from serbench.report.results import Result, check_jobs, load_result
from serbench.report.safe_paths import inside
from serbench.report.stats import summarize

FORMATS = ("svg", "png", "pdf")
DEFAULT_FORMATS = ("svg", "png")
PNG_DPI = 300  # print resolution: a journal asks for >= 300 dpi; the screen default (100) blurs a printed figure


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise SerbenchError("serbench plot needs matplotlib: pip install 'serbench[plot]'") from None
    matplotlib.use("Agg")  # files only: no display needed
    matplotlib.rcParams["svg.fonttype"] = "none"  # SVG text stays text: searchable, and smaller
    import matplotlib.pyplot as plt

    return plt


def _records(result: Result) -> list[dict]:
    out = []
    for fold in result.data["folds"]:
        job = Job(str(fold["fold"]), int(fold["seed"]))
        path = result.dir.job_record(job)
        if path.exists():
            check_jobs(result.run_dir, [job])  # an edited job file is refused, naming it
        out.append(json.loads(path.read_text()) if path.exists() else fold)
    return out


def plot_run(run_dir: str | Path, formats: tuple[str, ...] = DEFAULT_FORMATS, into: Path | None = None) -> list[Path]:
    """Write every figure of the run into ``RUN_DIR/figures`` (or the folder ``into``: the
    site draws into itself and leaves the run folder as it was); the files written, each
    checked to stay in that folder (:func:`serbench.report.safe_paths.inside`)."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise SerbenchError(f"--format {bad[0]}: expected one of {', '.join(FORMATS)}")
    if not formats:
        raise SerbenchError(f"--format: give at least one of {', '.join(FORMATS)}")
    plt = _pyplot()
    result = load_result(run_dir)
    missing = missing_parts(result.data, ("folds", "classes"))
    if missing:
        raise SerbenchError(f"{result.dir.result}: {missing}, so no figure can be drawn (rerun serbench "
                            "finish on its run)")
    records = _records(result)
    target = into if into is not None else inside(result.run_dir, result.dir.figures.name)
    target.mkdir(exist_ok=True)
    written = []
    for name, draw in _drawers(result):
        figure = draw(plt, result, records)
        if figure is None:  # nothing to draw it from (a reliability diagram needs probabilities)
            continue
        figure.suptitle(f"{result.run_id}", fontsize=8, y=0.995)
        figure.tight_layout()
        for fmt in formats:
            path = inside(target, f"{name}.{fmt}")
            figure.savefig(path, dpi=PNG_DPI)  # vector formats ignore it
            written.append(path)
        plt.close(figure)
    return written


def _drawers(result: Result) -> list[tuple]:
    """``(name, draw(plt, result, records))`` for every figure of this kind of result."""
    if is_dimensional(result.data):
        from serbench.report import dimension_plots
        from serbench.report.results import read_run_predictions

        def scatter(plt, result, records):
            return dimension_plots.scatter(plt, result, read_run_predictions(result))

        return [("forest", dimension_plots.forest), ("scatter", scatter), ("per_fold", dimension_plots.per_fold),
                ("curves", _curves)]
    from serbench.report import reliability

    return [("confusion", _confusion), ("per_class_recall", _per_class), ("forest", _forest),
            ("per_fold", _per_fold), ("curves", _curves), ("reliability", reliability.draw)]


def _confusion(plt, result: Result, records: list[dict]):
    overall = result.data.get("overall")
    labels = result.data["classes"]
    if overall:
        counts = np.array(overall["confusion"]["counts"], dtype=float)
    else:  # a result written before the overall block: sum the jobs' matrices
        counts = np.sum([np.array(r["confusion"], dtype=float) for r in records if "confusion" in r], axis=0)
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    figure, ax = plt.subplots(figsize=(1.2 + 0.9 * len(labels), 1.0 + 0.8 * len(labels)))
    image = ax.imshow(share, vmin=0, vmax=1, cmap="Blues")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{share[i, j]:.2f}\n({int(counts[i, j])})", ha="center", va="center", fontsize=8,
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("reference label")
    ax.set_title("confusion, rows normalised (all jobs)")
    figure.colorbar(image, ax=ax, fraction=0.046)
    return figure


def _by_fold(records: list[dict], value) -> list[float]:
    """``value(record)`` averaged over seeds within each fold, in fold order."""
    folds: dict[str, list[float]] = {}
    for r in records:
        folds.setdefault(str(r["fold"]), []).append(value(r))
    return [float(np.mean(v)) for v in folds.values()]


def _per_class(plt, result: Result, records: list[dict]):
    labels = result.data["classes"]
    figure, ax = plt.subplots(figsize=(1.5 + 0.8 * len(labels), 3.2))
    for k, label in enumerate(labels):
        values = _by_fold([r for r in records if "per_class" in r], lambda r, c=label: r["per_class"][c]["recall"])
        entry = summarize(values) if values else {"mean": 0.0, "ci95": None}
        ax.bar(k, entry["mean"] * 100, color="#4c72b0")
        if entry["ci95"]:
            lo, hi = clipped(entry["ci95"])
            ax.errorbar(k, entry["mean"] * 100, yerr=[[(entry["mean"] - lo) * 100], [(hi - entry["mean"]) * 100]],
                        color="black", capsize=4)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_ylabel("recall (%)")
    ax.set_ylim(0, 100)
    ax.set_title("per-class recall: mean over folds, 95% t interval")
    return figure


def _forest(plt, result: Result, records: list[dict]):
    figure, ax = plt.subplots(figsize=(5.5, 2.4))
    for row, (metric, name) in enumerate(COLUMNS.items()):
        entry = result.summary[metric]
        for offset, key, color, label in ((-0.12, "ci95", "#4c72b0", "t over folds"),
                                          (0.12, "ci95_bootstrap", "#dd8452", "cluster interval")):
            interval = clipped(entry.get(key))
            if interval:
                ax.plot([interval[0] * 100, interval[1] * 100], [row + offset] * 2, color=color, lw=2,
                        label=label if row == 0 else None)
            ax.plot(entry["mean"] * 100, row + offset, "o", color=color)
    ax.set_yticks(range(len(COLUMNS)), list(COLUMNS.values()))
    ax.invert_yaxis()
    ax.set_xlabel("% (mean over folds, 95% intervals)")
    ax.legend(fontsize=7, loc="lower right")
    speakers = result.summary["ua"].get("speakers")
    ax.set_title("metrics" + (f" ({speakers} speakers)" if speakers else ""))
    return figure


def _per_fold(plt, result: Result, records: list[dict]):
    figure, axes = plt.subplots(1, len(COLUMNS), figsize=(3.0 * len(COLUMNS), 2.8), sharey=True)
    folds = list(dict.fromkeys(str(r["fold"]) for r in records))
    for ax, (metric, name) in zip(axes, COLUMNS.items()):
        means = _by_fold(records, lambda r, m=metric: r["metrics"][m])
        ax.bar(range(len(folds)), [m * 100 for m in means], color="#c7d3e8")
        for r in records:
            ax.plot(folds.index(str(r["fold"])), r["metrics"][metric] * 100, "o", color="#4c72b0", ms=4)
        ax.set_xticks(range(len(folds)), folds)
        ax.set_xlabel("fold")
        ax.set_title(name)
    axes[0].set_ylabel("% (points: seeds; bars: fold mean)")
    return figure


def _curves(plt, result: Result, records: list[dict]):
    figure, ax = plt.subplots(figsize=(5.5, 3.0))
    for r in records:
        history = r.get("dev_history") or []
        if not history:
            continue
        epochs = range(1, len(history) + 1)
        line, = ax.plot(epochs, history, lw=1, label=f"fold {r['fold']} seed {r['seed']}")
        best = r.get("best_epoch")
        if best and 1 <= best <= len(history):
            ax.plot(best, history[best - 1], "*", color=line.get_color(), ms=9)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))  # epochs are whole: no tick at 2.5
    ax.set_ylabel("dev criterion (higher is better)")
    ax.set_title("early stopping: dev criterion per epoch (* = kept)")
    if len(records) <= 15:
        ax.legend(fontsize=6, ncol=2)
    return figure


def plot_systems(results: list[Result], path: Path) -> Path:
    """A forest plot of several runs of one comparability group: each run's main metric, mean
    over folds, with its t and cluster 95% intervals, best first. Runs of
    several groups are refused: one axis would rank them against each other."""
    from serbench.report.ranking import groups, system_label

    found = groups(results)
    if len(found) != 1:
        raise SerbenchError(f"plot_systems: the {len(results)} runs span {len(found)} comparability groups "
                            f"({'; '.join(g.heading for g in found)}); draw one plot per group")
    (group,) = found
    plt = _pyplot()
    runs, metric = group.results, group.metric
    if is_dimensional(runs[0].data):  # one comparability group: every run of it is of the same task
        from serbench.report.dimension_plots import draw_systems

        figure = draw_systems(plt, runs, [system_label(r) for r in runs], group.heading)
        figure.tight_layout()
        figure.savefig(path, dpi=PNG_DPI)
        plt.close(figure)
        return path
    figure, ax = plt.subplots(figsize=(9.0, 1.0 + 0.45 * len(runs)))
    for row, r in enumerate(runs):
        entry = r.summary[metric]
        for offset, key, color, label in ((-0.12, "ci95", "#4c72b0", "t over folds"),
                                          (0.12, "ci95_bootstrap", "#dd8452", "cluster interval")):
            interval = clipped(entry.get(key))
            if interval:
                ax.plot([interval[0] * 100, interval[1] * 100], [row + offset] * 2, color=color, lw=2,
                        label=label if row == 0 else None)
            ax.plot(entry["mean"] * 100, row + offset, "o", color=color)
    ax.set_yticks(range(len(runs)), [system_label(r) for r in runs], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"{COLUMNS.get(metric, metric)} % (mean over folds, 95% intervals, clipped to [0, 100])")
    ax.set_title(group.heading, fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=PNG_DPI)
    plt.close(figure)
    return path
