"""A static leaderboard site: ``serbench leaderboard RUNS... --html DIR``.

``DIR/index.html`` has one sortable table per comparability group (:mod:`serbench.report.ranking`:
same protocol, corpus, classes, test split and metric definitions; click a column header; the
script and styles are inline, nothing is fetched, so the page works opened from disk and
offline): each measured run with what it is and every metric as mean and 95% interval
(clipped to [0, 100]), a mark on the runs not significantly different from the group's best
(speaker-block paired permutation test, Holm-corrected, :mod:`serbench.report.compare`, where the
runs are paired), and beside each run the reported rows of its method on the same protocol
and test split only. Results of several groups get a warning line, never one ranking.
``DIR/runs/<run id>/`` holds one page per run (configuration, environment, per-fold table,
figures) with copies of its ``result.json`` and ``predictions.csv`` and its figures
(:mod:`serbench.report.plots`, drawn into the site: the run folders given are only read).
A dimensional group's table (``--task dimensional``) has the result's own columns (mean CCC,
then CCC, Pearson r and MAE per dimension, as they are: no percent) and its fairness column the
female - male CCC; its run pages show the dimensional figures (:mod:`serbench.report.dimension_plots`).

A run id is text read from a result, so its folder is :func:`serbench.report.safe_paths.file_name`
of it (two copies of one run get two folders), and every file is written through
:func:`serbench.report.safe_paths.inside`: nothing lands outside ``DIR``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from jinja2 import Environment

from serbench.api.errors import SerbenchError
from serbench.report.beyond_table import fairness_cell, fairness_column
from serbench.report.dimension_results import is_dimensional
from serbench.report.leaderboard import COLUMNS, cell, cluster_header, metric_columns, metric_header, reported_for, settings
from serbench.report.ranking import clipped, groups, mixed_warning, system_label, versions
from serbench.report.results import Result
from serbench.report.safe_paths import copy_inside, file_name, inside, unique_file_names, write_text_inside

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#eef;cursor:pointer;user-select:none}
th.sorted-asc::after{content:" \\25B2"} th.sorted-desc::after{content:" \\25BC"}
tr.reported td{color:#666;font-style:italic;background:#fafafa}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.mark{color:#1a7f37;font-weight:bold}
.warning{color:#9a3412;font-weight:bold}
img{max-width:100%;border:1px solid #ddd;margin:4px}
code,pre{background:#f6f8fa}
"""

SORT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var ascending = !th.classList.contains("sorted-asc");
      table.querySelectorAll("th").forEach(function (h) { h.classList.remove("sorted-asc", "sorted-desc"); });
      th.classList.add(ascending ? "sorted-asc" : "sorted-desc");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].dataset.value || a.cells[column].textContent;
        var y = b.cells[column].dataset.value || b.cells[column].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title><style>{{ style }}</style></head>
<body>
<h1>{{ title }}</h1>
<p>Each cell: mean over folds, and its 95% interval ({{ ci_note }}). <span class="mark">&#8776;best</span>:
not significantly different from the best run of its table (speaker-block paired permutation test,
Holm-corrected, &alpha; = 0.05). One table per comparability group (protocol, corpus digest, classes,
test split, metric definitions): runs are ranked and marked within a table only. An interval that
reaches past 0 or 100 is clipped to that range. A dimensional group's cells (--task dimensional) are CCC, Pearson r
and MAE as they are, not percent, each interval clipped to its metric's range. Grey rows: numbers as published by a method's authors,
on the same protocol and test split only, with what differs from the measured row. Click a column
header to sort.</p>
{% if warning %}<p class="warning">{{ warning }}</p>{% endif %}
{% if no_figures %}<p class="warning">{{ no_figures }}</p>{% endif %}
{% for section in sections %}
<h2 id="{{ section.anchor }}">{{ section.heading }}</h2>
<table class="sortable" id="table-{{ section.anchor }}">
<thead><tr>{% for h in section.headers %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in section.rows %}
<tr class="{{ row.kind }}">
<td title="{{ row.label }}"><a href="{{ row.link }}">{{ row.downstream }}</a>{% if row.mark %} <span class="mark">&#8776;best</span>{% endif %}</td>
<td>{{ row.upstream }}</td><td>{{ row.pooling }}</td><td>{{ row.loss }}</td><td>{{ row.recipe }}</td>
<td>{{ row.settings }}</td><td>{{ row.seeds }}</td><td>{{ row.versions }}</td>
<td>{% if row.run %}<a href="{{ row.link }}"><code>{{ row.run }}</code></a>{% endif %}</td>
{% for m in row.metrics %}<td class="num" data-value="{{ m.value }}" title="{{ m.title }}">{{ m.text }}</td>{% endfor %}
</tr>
{% endfor %}
</tbody></table>
{% if section.note %}<p>{{ section.note }}</p>{% endif %}
{% if section.figure %}<img src="{{ section.figure }}" alt="forest plot of every system of {{ section.heading }}">{% endif %}
{% endfor %}
<script>{{ sort | safe }}</script>
</body></html>
"""

RUN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ r.run_id }}</title><style>{{ style }}</style></head>
<body>
<p><a href="../../index.html">&larr; leaderboard</a></p>
<h1>{{ r.run_id }}</h1>
<p>{{ config.downstream }} on {{ config.upstream }}, {{ config.protocol }}; files: <a href="result.json">result.json</a>,
<a href="predictions.csv">predictions.csv</a></p>
<h2>Summary</h2>
<table><thead><tr><th>metric</th><th>mean{{ unit }}</th><th>95% CI (t, folds)</th><th>95% CI ({{ cluster }})</th></tr></thead>
<tbody>{% for name, e in summary %}<tr><td>{{ name }}</td><td class="num">{{ e.mean }}</td><td>{{ e.t }}</td><td>{{ e.boot }}</td></tr>{% endfor %}</tbody></table>
<h2>Figures</h2>
{% for f in figures %}<img src="{{ f }}" alt="{{ f }}">{% else %}<p>{{ no_figures }}</p>{% endfor %}
<h2>Per (fold, seed) job</h2>
<table class="sortable"><thead><tr><th>fold</th><th>seed</th><th>n test</th>{% for n in metric_names %}<th>{{ n }}{{ unit }}</th>{% endfor %}<th>best epoch</th></tr></thead>
<tbody>{% for f in folds %}<tr><td>{{ f.fold }}</td><td>{{ f.seed }}</td><td class="num">{{ f.n_test }}</td>
{% for v in f.cells %}<td class="num">{{ v }}</td>{% endfor %}<td class="num">{{ f.best_epoch }}</td></tr>{% endfor %}</tbody></table>
<h2>Plugins and encoder</h2>
<pre>{{ plugins }}</pre>
<h2>Configuration</h2>
<pre>{{ config_json }}</pre>
<h2>Environment</h2>
<pre>{{ environment }}</pre>
<script>{{ sort | safe }}</script>
</body></html>
"""


def _pct(x: float) -> str:
    return f"{x * 100:.2f}"


def _interval(interval, metric: str = "ua", missing: str = "1 fold") -> str:
    """``[lo, hi]`` in percent, clipped to [0, 100] (results written before intervals were
    clipped at the source hold bounds outside it)."""
    shown = clipped(interval)
    return f"n/a ({missing})" if shown is None else f"[{_pct(shown[0])}, {_pct(shown[1])}]"


def _dimensional_value(x: float) -> str:
    return f"{x:.3f}"


def _dimensional_interval(interval, metric: str, missing: str = "1 fold") -> str:
    """``[lo, hi]`` of a CCC, r or MAE as it is, clipped to the metric's own range."""
    from serbench.report.dimension_stats import clipped as within

    shown = within(interval, metric)
    return f"n/a ({missing})" if shown is None else f"[{shown[0]:.3f}, {shown[1]:.3f}]"


def _missing(entry: dict, ci: str) -> str:
    """Why an entry has no interval of kind ``ci``."""
    record = entry.get("bootstrap") or entry.get("cluster") or {}
    return "1 fold" if ci == "t" else record.get("reason") or "no interval"


def _close_to_best(group: Sequence[Result], metric: str) -> tuple[set[str], str]:
    """Run ids not significantly different from the group's best (Holm-corrected paired test
    against it), and why there are no marks when the runs cannot be paired."""
    from serbench.report.compare import compare

    if len(group) < 2:
        return set(), ""
    best = max(group, key=lambda r: r.summary[metric]["mean"])
    try:
        data = compare([r.run_dir for r in group], baseline=best.run_dir)
    except SerbenchError as exc:
        return set(), f"No ≈best marks: these runs cannot be compared paired ({exc})."
    return {best.run_id} | {row["a_id"] for row in data["comparisons"] if row["metrics"][metric]["p_holm"] >= 0.05}, ""


NO_FIGURES = "Figures omitted: matplotlib is not installed (pip install 'serbench[plot]' draws them)."


def figure_drawers():
    """``(plot_run, plot_systems)``, or None without matplotlib: the tables need no plotting
    library, so a site without its figures (and a note saying why) beats no site."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    from serbench.report.plots import plot_run, plot_systems

    return plot_run, plot_systems


def build(results: Sequence[Result], target: str | Path, reg, ci: str = "t") -> Path:
    """Write the site into ``target``; the index page. The site is made in a hidden folder beside
    ``target`` and moved into place only once complete: a failure leaves ``target`` as it was,
    never half a site."""
    check_inputs(results)
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise SerbenchError(f"--html {target}: a file is in the way (the site is a folder)")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    mask = os.umask(0)
    os.umask(mask)
    staging.chmod(0o777 & ~mask)  # mkdtemp's folder is private; a published site is not
    try:
        _write_site(results, staging, reg, ci, figure_drawers())
        _move_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target / "index.html"


def _move_into_place(staging: Path, target: Path) -> None:
    """Move every file of the finished site from ``staging`` to the same place under ``target``,
    one rename each, replacing the file an earlier site left there. Files are merged, never a
    folder replaced: ``target`` may be a folder that also holds the runs themselves."""
    target.mkdir(exist_ok=True)
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    places = [(source, inside(target, source.relative_to(staging))) for source in files]  # checked before any moves
    for _, dest in places:
        if dest.is_dir():
            raise SerbenchError(f"--html {target}: the folder {dest} is in the way of the site's file of that name")
    for source, dest in places:
        dest.parent.mkdir(parents=True, exist_ok=True)
        source.replace(dest)


def _write_site(results: Sequence[Result], target: Path, reg, ci: str, drawers) -> Path:
    """Every page of the site into the (new, empty) folder ``target``; figures when ``drawers``."""
    plot_run, plot_systems = drawers or (None, None)
    inside(target, "runs").mkdir(exist_ok=True)
    folders = dict(zip(map(id, results), unique_file_names([r.run_id for r in results])))  # never a run id as a path
    env = Environment(autoescape=True)
    described = ["downstream", "upstream", "pooling", "loss", "recipe", "settings", "seeds", "versions", "run"]
    sections = []
    found = groups(results)
    tables_of = Counter(g.comparability["protocol"] for g in found)  # a protocol's only table keeps #table-<protocol>
    for group in found:
        protocol = group.comparability["protocol"]
        anchor = protocol if tables_of[protocol] == 1 else f"{protocol}-{group.key}"
        close, unpaired = _close_to_best(group.results, group.metric)
        shown = metric_columns(group.results[0])  # one group, one task: every run has these metrics
        headers = described + [metric_header(m) for m in shown] + [fairness_column(group.results[0].data)]
        rows, notes = [], []
        for r in group.results:
            config = r.data["config"]
            link = f"runs/{folders[id(r)]}/index.html"
            rows.append({"kind": "measured", "link": link, "downstream": config["downstream"],
                         "mark": r.run_id in close, "upstream": config["upstream"], "pooling": config["pooling"],
                         "loss": config.get("loss"), "recipe": (config.get("recipe") or {}).get("name", ""),
                         "settings": settings(r), "seeds": ",".join(map(str, config["seeds"])), "run": r.run_id,
                         "versions": versions(r), "label": system_label(r),
                         "metrics": [_metric_cell(r.summary[m], ci, r, m) for m in shown] + [_fairness_cell(r)]})
            split, pairs, why = reported_for(r, reg, among=results)
            for row in _reported_rows(r, pairs, link, shown):
                rows.append({**row, "metrics": row["metrics"] + [{"value": "", "title": "", "text": "–"}]})
            if not pairs:
                notes.append(f"{r.run_id}: {why}")
            _run_page(env, r, target, f"runs/{folders[id(r)]}", plot_run)
        note = ("No reported row on this protocol and test split for: " + "; ".join(notes) + ".") if notes else ""
        figure = (plot_systems(group.results, inside(target, f"forest-{file_name(group.key)}.svg")).name
                  if plot_systems else "")
        sections.append({"anchor": anchor, "heading": group.heading, "rows": rows, "headers": headers,
                         "note": " ".join(filter(None, [unpaired, note])), "figure": figure})
    ci_note = "Student-t over folds" if ci == "t" else "cluster interval (folds or speakers as clusters)"
    page = env.from_string(INDEX).render(title="serbench leaderboard", style=STYLE, sort=SORT,
                                         sections=sections, ci_note=ci_note, warning=mixed_warning(found),
                                         no_figures="" if drawers else NO_FIGURES)
    return write_text_inside(target, "index.html", page)


def check_inputs(results: Sequence[Result]) -> None:
    """Refuse, before anything is written, a result a run page cannot show (no folds or classes)
    or whose ``predictions.csv`` is not the file its run wrote (it would be published)."""
    from serbench.report.result_fields import missing_parts
    from serbench.report.results import read_run_predictions

    for r in results:
        missing = missing_parts(r.data, ("folds", "classes"))
        if missing:
            raise SerbenchError(f"{r.dir.result}: {missing}, so its run page cannot be made (rerun "
                                "serbench finish on its run)")
        read_run_predictions(r)


def _metric_cell(entry: dict, ci: str, r: Result, metric: str = "ua") -> dict:
    """A proportion in percent with its bracketed interval; a dimensional metric (CCC, r, MAE)
    as it is, with ± or its clipped bounds (:func:`serbench.report.leaderboard.cell`)."""
    interval = entry["ci95"] if ci == "t" else entry.get("ci95_bootstrap")
    plugins = ", ".join(f"{k} v{v}" for k, v in r.data.get("plugins", {}).items())
    text = (f"{_pct(entry['mean'])} {_interval(interval, metric, _missing(entry, ci))}" if metric in COLUMNS
            else cell(entry, ci, metric))
    return {"value": entry["mean"], "text": text,
            "title": f"plugins: {plugins}; encoder fingerprint {r.data.get('upstream_fingerprint', '?')}"}


def _fairness_cell(r: Result) -> dict:
    """Female - male UA (CCC for a dimensional result) with its interval and audEERING's flag
    (:mod:`serbench.report.groups`)."""
    metric = "ccc_mean" if is_dimensional(r.data) else "ua"
    difference = (((r.data.get("groups") or {}).get("gender") or {}).get("difference") or {}).get(metric) or {}
    return {"value": difference.get("mean", ""), "text": fairness_cell(r.data),
            "title": f"female - male {metric}, cluster interval; pass/FAIL: audEERING's fairness checks "
                     "(each sex's score within the threshold of the whole's)"}


def _reported_rows(r: Result, pairs: list[dict], link: str | None = None,
                   shown: tuple[str, ...] = tuple(COLUMNS)) -> list[dict]:
    """One grey row per reported variant, its metrics in the measured row's columns, linking
    to its run's page (``link``; by default the folder of the run id made safe)."""
    link = link or f"runs/{file_name(r.run_id)}/index.html"
    from serbench.report.leaderboard import UNITS

    config = r.data["config"]
    by_variant: dict[tuple, dict] = {}
    for row in pairs:  # one row per reported variant and setup; its metrics side by side
        key = (row.get("variant", ""), f"{row['encoder']}, {row['pooling']}")
        by_variant.setdefault(key, {})[row["metric"]] = row["value"] * UNITS[row["unit"]]
    out = []
    for (variant, setup), values in by_variant.items():
        if not any(m in values for m in shown):  # numbers of another task (a categorical row beside a dimensional run)
            continue
        differs = f"reported with {setup} (measured: {config['upstream']}, {config['pooling']})"
        name = f"{config['downstream']} (reported{': ' + variant if variant else ''})"
        out.append({"kind": "reported", "link": link, "downstream": name,
                    "mark": False, "upstream": differs, "pooling": "", "loss": "", "recipe": "paper", "settings": "",
                    "seeds": "", "run": "", "versions": "", "label": "as published", "metrics": [{"value": values.get(m, ""), "title": "as published",
                                              "text": f"{values[m]:.2f}" if m in values else "–"} for m in shown]})
    return out


def _run_page(env: Environment, r: Result, target: Path, folder: str, plot_run) -> None:
    """The run's page in ``target/folder`` (a name :func:`build` made safe), with copies of its
    files (checked by :func:`check_inputs`) and its figures."""
    inside(target, folder).mkdir(parents=True, exist_ok=True)
    for path in (r.dir.result, r.dir.predictions):
        copy_inside(target, path, f"{folder}/{path.name}")
    figures = [path.name for path in plot_run(r.run_dir, ("svg",), into=inside(target, folder))] if plot_run else []
    data = r.data
    shown = metric_columns(r)
    value, interval = (_pct, _interval) if not is_dimensional(data) else (_dimensional_value, _dimensional_interval)
    page = env.from_string(RUN).render(
        r=r, style=STYLE, sort=SORT, config=data["config"], figures=figures, no_figures=NO_FIGURES,
        metric_names=[COLUMNS.get(m, m) for m in shown], unit="" if is_dimensional(data) else " %",
        cluster=cluster_header(data["summary"][shown[0]]).removeprefix("95% CI (").removesuffix(")"),
        summary=[(COLUMNS.get(m, m), {"mean": value(data["summary"][m]["mean"]), "t": interval(data["summary"][m]["ci95"], m),
                                      "boot": interval(data["summary"][m].get("ci95_bootstrap"), m,
                                                       _missing(data["summary"][m], "bootstrap"))}) for m in shown],
        folds=[{"fold": f["fold"], "seed": f["seed"], "n_test": f["n_test"], "best_epoch": f.get("best_epoch"),
                "cells": [value(f["metrics"][m]) for m in shown]} for f in data["folds"]],
        plugins=json.dumps({"plugins": data.get("plugins"), "upstream_fingerprint": data.get("upstream_fingerprint")}, indent=2),
        config_json=json.dumps(data["config"], indent=2), environment=json.dumps(data.get("environment", {}), indent=2))
    write_text_inside(target, f"{folder}/index.html", page)
