"""Result files to publishable tables: ``mean ± half-width`` of the 95% interval, in percent."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tabulate import tabulate

from serbench.api.errors import SerbenchError
from serbench.report.beyond_table import (
    DIMENSIONAL_FAIRNESS_COLUMN,
    FAIRNESS_COLUMN,
    FAIRNESS_CSV,
    fairness_cell,
    fairness_column,
    fairness_values,
)
from serbench.report.ranking import clipped, groups, mixed_warning, ordered, user_overrides, versions

if TYPE_CHECKING:  # results pulls in pandas and scipy: not needed to build the CLI
    from serbench.report.results import Result

COLUMNS = {"ua": "UA", "wa": "WA", "macro_f1": "macro-F1"}
CI_KINDS = ("t", "bootstrap")


def cell(entry: dict, ci: str, metric: str = "ua") -> str:
    """``73.87 ± 2.53``; the cluster interval may be asymmetric, so its half-width is half
    its length. An interval that reaches past 0 or 100 is shown clipped, as its bounds
    (``2.10 [0.00, 7.40]``: a ± would claim a score below 0). Without an interval the cell
    says why (one fold; too few clusters). A dimensional metric (``ccc_arousal``) is shown as it
    is, ``0.612 ± 0.041``, clipped to its own range ([-1, 1] for a correlation)."""
    interval = entry["ci95"] if ci == "t" else entry.get("ci95_bootstrap")
    scale, digits = (1, 3) if metric not in COLUMNS else (100, 2)
    mean = entry["mean"] * scale
    if interval is None:
        return f"{mean:.{digits}f} ({_no_interval(entry, ci)})"
    shown = clipped(interval) if metric in COLUMNS else _dimension_clipped(interval, metric)
    if shown != list(interval):
        return f"{mean:.{digits}f} [{shown[0] * scale:.{digits}f}, {shown[1] * scale:.{digits}f}]"
    return f"{mean:.{digits}f} ± {(interval[1] - interval[0]) * scale / 2:.{digits}f}"


def _dimension_clipped(interval: list[float], metric: str) -> list[float]:
    from serbench.report.dimension_stats import clipped as within

    return within(interval, metric)


def metric_columns(result: Result) -> tuple[str, ...]:
    """The metrics a result's row shows: UA, WA, macro-F1, or a dimensional result's own."""
    from serbench.report.dimension_results import result_metrics

    return result_metrics(result.data)


def metric_header(metric: str, percent: str = "%") -> str:
    """``UA (%)`` for a proportion; a dimensional metric by its name (``ccc_arousal``)."""
    return f"{COLUMNS[metric]} ({percent})" if metric in COLUMNS else metric


def _no_interval(entry: dict, ci: str) -> str:
    if ci == "t":
        return "1 fold"
    record = entry.get("bootstrap") or entry.get("cluster") or {}
    return f"no interval: {record['reason']}" if record.get("reason") else "no interval"


def cluster_header(entry: dict) -> str:
    """The cluster interval's column: the level resampled and how many clusters (results made
    before it was recorded were a speaker bootstrap)."""
    cluster = entry.get("cluster")
    if not isinstance(cluster, dict):
        speakers = entry.get("speakers")
        return "95% CI (speaker bootstrap" + (f", {speakers} speakers)" if speakers else ")")
    unit = str(cluster.get("unit"))
    level = {"fold": "folds as clusters", "speaker": "speakers as clusters",
             "utterance": "UTTERANCE-level: speakers unknown"}.get(unit, f"{unit}, crossed")
    return f"95% CI ({level}, {cluster.get('clusters')})"


def _check_ci(ci: str) -> None:
    if ci not in CI_KINDS:
        raise SerbenchError(f"--ci {ci!r}: expected one of {', '.join(CI_KINDS)}")


def settings(result: Result) -> str:
    """What the user set beyond the defaults (``-o`` overrides, without where it ran), and a
    mark on a control run (``train.shuffle_labels=True`` is a leakage check, not a system), on a
    run whose copy of the corpus differs from the protocol's published counts, on a
    speaker-dependent protocol and on a run whose speakers are unknown."""
    config = result.data["config"]
    shown = user_overrides(result)
    if config.get("params", {}).get("train", {}).get("shuffle_labels"):
        shown = "CONTROL: shuffled training labels" + (f"; {shown}" if shown else "")
    if result.data.get("annotations", {}).get("corpus_differs"):
        shown = "CORPUS DIFFERS from the published counts" + (f"; {shown}" if shown else "")
    speakers = result.data.get("speakers") or {}
    if speakers.get("speaker_dependent"):
        shown = "SPEAKER-DEPENDENT: the same speakers in train and test" + (f"; {shown}" if shown else "")
    if speakers.get("known") is False:
        shown = "speakers unknown: speaker intervals are utterance-level" + (f"; {shown}" if shown else "")
    return shown or "defaults"


HEADERS = ["protocol", "upstream", "downstream", "pooling", "loss", "recipe", "settings", "seeds", "versions", "run"]
FAIRNESS_NOTE = (f"{FAIRNESS_COLUMN}: female minus male UA in points with its cluster interval, then audEERING's "
                 "fairness flag (each sex's UA within report.fairness_threshold of the whole's, and each class's recall "
                 "and precision within report.fairness_recall_per_class / report.fairness_precision_per_class); "
                 f"{DIMENSIONAL_FAIRNESS_COLUMN} for a dimensional result: female minus male mean CCC, the flag on each "
                 "dimension's CCC; - when no gender is known.")
CLIPPED_NOTE = "an interval that reaches past 0 or 100 is clipped to that range and shown as [low, high]"


def _row(r: Result, ci: str) -> list[str]:
    """What the run is (every column of ``HEADERS``), then each metric's mean and interval."""
    config = r.data["config"]
    return ([config["protocol"], config["upstream"], config["downstream"], config["pooling"], config.get("loss", "?"),
             (config.get("recipe") or {}).get("name", "?"), settings(r), ",".join(map(str, config["seeds"])),
             versions(r), r.run_id]
            + [cell(r.summary[m], ci, m) for m in metric_columns(r)] + [fairness_cell(r.data, ci)])


def rows(results: Sequence[Result], ci: str = "t") -> list[list[str]]:
    """One row per run, comparability group by group, best first within each
    (:func:`serbench.report.ranking.ordered`)."""
    _check_ci(ci)
    return [_row(r, ci) for r in ordered(results)]


def markdown(results: Sequence[Result], ci: str = "t") -> str:
    """GitHub-flavoured markdown: one table per comparability group, one row per run, best first.
    One group: the table, its group named under it. Several: a warning line, then each group
    under its own heading."""
    _check_ci(ci)
    note = ("Student-t over folds" if ci == "t" else
            "cluster interval at the level where the dependence lives: folds when speakers nest in folds, "
            "speakers in one test split; delete-one-cluster jackknife with t")
    found = groups(results)
    warning = mixed_warning(found)
    parts = [f"{warning}\n"] if warning else []
    for group in found:
        headers = (HEADERS + [metric_header(m) for m in metric_columns(group.results[0])]  # one task per group
                   + [fairness_column(group.results[0].data)])
        cells = [[one_line(c).replace("|", "\\|") for c in _row(r, ci)] for r in group.results]  # a '|' splits a cell
        body = tabulate(cells, headers=headers, tablefmt="pipe", disable_numparse=True)
        title = one_line(group.heading).replace("|", "\\|")
        parts.append(f"### {title}\n\n{body}\n" if warning else f"{body}\n\nComparable group: {title}.\n")
    return ("\n".join(parts) + f"\nValues: mean over folds ± half-width of its 95% confidence interval ({note}); "
            f"{CLIPPED_NOTE}. Rows are ranked within a comparability group only. {FAIRNESS_NOTE}\n")


LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def one_line(value: object) -> str:
    """``value`` as text on one line: a line break or control character read from a result
    (a run id, a class name) would end a markdown row or a LaTeX comment, and turn the rest of
    the name into table rows or LaTeX commands."""
    return LINE_BREAKING.sub(" ", str(value))


LATEX_SPECIAL = {"\\": "\\textbackslash{}", "&": "\\&", "%": "\\%", "$": "\\$", "#": "\\#", "_": "\\_",
                 "{": "\\{", "}": "\\}", "~": "\\textasciitilde{}", "^": "\\textasciicircum{}",
                 "<": "\\textless{}", ">": "\\textgreater{}", "|": "\\textbar{}", "±": "$\\pm$"}
LATEX_SPECIAL_PATTERN = re.compile("[" + re.escape("".join(LATEX_SPECIAL)) + "]")


def latex_text(text: object) -> str:
    """``text`` safe in LaTeX running text and table cells (a heading holds protocol and class
    names; a cell a run's names and ``%``): each special character escaped exactly once, ``<``,
    ``>`` and ``|`` as text commands (the default font encoding prints other glyphs for them),
    ``±`` in math mode."""
    return LATEX_SPECIAL_PATTERN.sub(lambda found: LATEX_SPECIAL[found.group()], one_line(text))


def latex(results: Sequence[Result], ci: str = "t") -> str:
    """The tables as LaTeX booktabs ``tabular`` environments, for a paper: one per comparability
    group, each under a ``\\paragraph`` naming its group when there are several. A paper's table
    has the columns a reader compares (method, encoder, pooling, seeds and the metrics; loss,
    recipe and settings only where they tell rows apart); what traces a row back to its run (run id,
    loss, recipe, versions) is a LaTeX comment under the row. Every text cell is escaped once
    (:func:`latex_text`): the header's ``%`` included, so it compiles as written."""
    _check_ci(ci)
    note = "Student-t over folds" if ci == "t" else "cluster interval (folds or speakers as clusters)"
    found = groups(results)
    warning = mixed_warning(found)
    parts = [f"% mean over folds ± half-width of its 95% interval ({note}); {CLIPPED_NOTE}; generated by serbench"]
    if warning:
        parts.append(f"% {one_line(warning)}\n\\textbf{{{latex_text(warning)}}}\n")
    for group in found:
        body = _latex_tabular(group.results, ci)
        title = latex_text(group.heading)
        parts.append(f"\\paragraph{{{title}}}\n{body}" if warning else f"% comparable group: {one_line(group.heading)}\n{body}")
    return "\n".join(parts) + "\n"


def _latex_tabular(results: Sequence[Result], ci: str) -> str:
    """One booktabs tabular: text columns left-aligned, metrics right-aligned. Method, encoder,
    pooling, seeds and the metrics always; loss and recipe only when they differ between the
    rows, settings only when some run changed a default (two rows never look the same)."""
    def recipe(r: Result) -> str:
        return (r.data["config"].get("recipe") or {}).get("name", "?")

    def loss(r: Result) -> str:
        return str(r.data["config"].get("loss", "?"))

    optional = [(name, value) for name, value, shown in (
        ("loss", loss, len({loss(r) for r in results}) > 1),
        ("recipe", recipe, len({recipe(r) for r in results}) > 1),
        ("settings", settings, any(settings(r) != "defaults" for r in results))) if shown]
    fairness = any(fairness_cell(r.data, ci) != "-" for r in results)  # shown only where a gender is known
    names = metric_columns(results[0])  # one task per comparability group
    headers = ["method", "encoder", "pooling", *(name for name, _ in optional), "seeds",
               *(metric_header(m) for m in names), *([fairness_column(results[0].data)] if fairness else [])]
    right = len(names) + fairness
    lines = ["\\begin{tabular}{" + "l" * (len(headers) - right) + "r" * right + "}", "\\toprule",
             " & ".join(latex_text(h) for h in headers) + " \\\\", "\\midrule"]
    for r in results:
        config = r.data["config"]
        cells = [config["downstream"], config["upstream"], config["pooling"], *(value(r) for _, value in optional),
                 str(len(config["seeds"]))]
        cells += [cell(r.summary[m], ci, m) for m in names] + ([fairness_cell(r.data, ci)] if fairness else [])
        lines.append(" & ".join(latex_text(c) for c in cells) + " \\\\")
        lines.append(f"% run {one_line(r.run_id)}: loss {one_line(loss(r))}, recipe {one_line(recipe(r))}, seeds "
                     f"{','.join(map(str, config['seeds']))}, versions {one_line(versions(r))}")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines)


def csv_table(results: Sequence[Result]) -> str:
    """One line per run: what it is, then per metric the mean and both 95% intervals (clipped to
    [0, 100]), in percent; then its rank within its comparability group, the group's key and
    heading (rows of different keys are never one ranking). A text cell a spreadsheet would run
    as a formula (a name beginning with ``=``, ``+``, ``-``, ``@``) is written as text
    (:func:`serbench.report.spreadsheet.spreadsheet_safe`); numbers stay numbers."""
    import csv
    import io

    from serbench.report.spreadsheet import safe_row

    out = io.StringIO()
    writer = csv.writer(out)
    names = list(dict.fromkeys(m for r in results for m in metric_columns(r)))  # categorical and dimensional: both
    metrics = [f"{m}_{part}" for m in names for part in ("mean", "t_low", "t_high", "boot_low", "boot_high")]
    writer.writerow(HEADERS + metrics + ["speakers", "rank", "comparability", "group"] + FAIRNESS_CSV)
    for group in groups(results):
        for rank, r in enumerate(group.results, start=1):
            values = []
            for m in names:
                entry = r.summary.get(m)
                if entry is None:  # a metric of the other task
                    values += [""] * 5
                    continue
                within = clipped if m in COLUMNS else (lambda i, m=m: i and _dimension_clipped(i, m))
                t, boot = within(entry["ci95"]) or [None, None], within(entry.get("ci95_bootstrap")) or [None, None]
                scale = 100 if m in COLUMNS else 1
                values += [f"{v * scale:.4f}" if v is not None else "" for v in (entry["mean"], *t, *boot)]
            speakers = r.summary[metric_columns(r)[0]].get("speakers")
            writer.writerow(safe_row(_row(r, "t")[: len(HEADERS)] + values
                                     + ["" if speakers is None else speakers, rank, group.key, group.heading]
                                     + fairness_values(r.data)))
    return out.getvalue()


def load_finished(paths: Sequence[str]) -> tuple[list[Result], list[str]]:
    """The results among ``paths``, and the run folders without a ``result.json`` (unfinished,
    or left by a failed run), which are skipped rather than stopping the table."""
    from pathlib import Path

    from serbench.report.results import load_result
    from serbench.report.rundir import RunDir

    results, skipped = [], []
    for path in paths:
        given = Path(path)
        for where in (given, RunDir(given).result):
            if where.is_symlink() and not where.exists():  # a loop, or a link whose target is gone
                raise SerbenchError(f"{where}: a symbolic link that leads to no file (a loop, or its target is gone)")
        if given.is_dir() and not RunDir(given).result.exists():
            skipped.append(str(path))
        else:
            results.append(load_result(path))
    return results, skipped


REPORTED_FIELDS = ("protocol", "split", "encoder", "pooling", "metric", "value", "unit", "corpus")
# present on every row, None where the paper does not say: its corpus release and test-split size
REPORTED_STATED = ("release", "n_test")
UNITS = {"%": 1.0, "fraction": 100.0}
FUSED = "fused_runs"  # a settings key: how many runs a reported fusion combined (0: a single model)
RELEASE_NOT_STATED = "release not stated"


def check_reported_row(name: str, spec, row: dict) -> None:
    """A reported row says what it means as data: the fields every table shows, its corpus
    release and test-split size (None: the paper does not say), and ``settings``, the resolved
    values that define its variant (``pooling``, ``loss``, ``downstream.<param>``,
    ``fused_runs``). A key that names no parameter of its downstream could never match a run."""
    missing = [k for k in REPORTED_FIELDS + REPORTED_STATED + ("settings",) if k not in row]
    if missing or row["unit"] not in UNITS:
        raise SerbenchError(f"downstream {name}: a reported row lacks {missing or ['a known unit']} ({row})")
    if not isinstance(row["settings"], dict):
        raise SerbenchError(f"downstream {name}: reported row {row.get('variant', '')!r}: settings is not a dict")
    declared = {f"downstream.{p.name}" for p in spec.params} | {"pooling", "loss", FUSED}
    unknown = sorted(set(row["settings"]) - declared)
    if unknown:
        raise SerbenchError(f"downstream {name}: reported row {row.get('variant', '')!r}: settings key "
                            f"{', '.join(unknown)} is not pooling, loss, {FUSED} or one of its downstream.* parameters")
    if row["n_test"] is not None and not (isinstance(row["n_test"], int) and row["n_test"] > 0):
        raise SerbenchError(f"downstream {name}: reported row {row.get('variant', '')!r}: n_test {row['n_test']!r} "
                            "is not a positive number of utterances (None: the paper does not say)")


def corpus_label(row: dict) -> str:
    """``MSP-Podcast v1.11`` or ``MSP-Podcast, release not stated``."""
    return f"{row['corpus']} {row['release']}" if row["release"] else f"{row['corpus']}, {RELEASE_NOT_STATED}"


def split_label(row: dict) -> str:
    """``Test1, 30647 utterances`` or ``test session, size not stated``."""
    return f"{row['split']}, {row['n_test']} utterances" if row["n_test"] else f"{row['split']}, size not stated"


def settings_label(values: dict) -> str:
    return " ".join(f"{k}={_value(v)}" for k, v in values.items())


def _value(v) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)  # as -o takes it: downstream.multitask=false


def reported(reg) -> str:
    """The papers' own numbers, from each downstream's ``meta.reported``, for reading
    beside what serbench measures: every value in percent (a paper's fractions converted and
    marked), with the settings that define each row's variant, the corpus release and test
    split (with its size where the paper gives it), encoder and pooling each row was measured with."""
    table, notes = [], []
    for name in sorted(reg.specs["downstream"]):
        spec = reg.specs["downstream"][name]
        for row in spec.meta.reported:
            check_reported_row(name, spec, row)
            scale = UNITS[row["unit"]]
            ci = row.get("ci95")
            mark = " (from 0–1)" if row["unit"] == "fraction" else ""
            caveat = row.get("caveat")
            if caveat and caveat not in notes:
                notes.append(caveat)
            table.append([spec.meta.paper or spec.citation, name, row.get("variant", ""), settings_label(row["settings"]),
                          row["protocol"], corpus_label(row), split_label(row), row["encoder"], row["pooling"], row["metric"],
                          f"{row['value'] * scale:.2f}{mark}" + (f" [{notes.index(caveat) + 1}]" if caveat else ""),
                          f"[{ci[0] * scale:.2f}, {ci[1] * scale:.2f}]" if ci else ""])
    headers = ["paper", "downstream", "variant", "settings", "protocol", "corpus", "test split", "encoder", "pooling",
               "metric", "reported (%)", "95% CI (%)"]
    body = tabulate(table, headers=headers, tablefmt="pipe", disable_numparse=True)
    footnotes = "".join(f"\n[{k}] {note}." for k, note in enumerate(notes, start=1))
    return (f"{body}\n\nNumbers as published by each method's authors (their encoders, recipes and splits), not "
            f"measured by serbench; in percent. A measured run stands beside a row only with the same settings, "
            f"protocol and test split, on a corpus copy that matches the row's release and split size; where the "
            f"paper states no release the run is shown as not comparable.{footnotes}\n")


def test_split(reg, protocol: str, params: dict) -> str | None:
    """What a run's folds were scored on, from its protocol's ``meta.test_split`` (a
    template over the protocol's parameters); None when the protocol does not say, or when
    the run did not record the parameter the template needs."""
    spec = reg.specs["protocol"].get(protocol)
    template = spec.meta.test_split if spec else None
    try:
        return template.format(**params) if template else None
    except (KeyError, IndexError):
        return None


@dataclass(frozen=True)
class Pairing:
    """How one measured result stands to its method's reported rows."""

    split: str | None  # what its folds were scored on
    pairs: list[dict]  # rows of the same variant, protocol, split and metric, on a matching corpus
    not_comparable: list[tuple[dict, str]]  # rows of the same variant, protocol and split; why the corpus is not theirs
    why: str  # why no row pairs ('' when one does)


def pairing(result: Result, reg, among: Sequence[Result] = ()) -> Pairing:
    """Like with like: a measured result pairs with a reported row only when it ran the
    row's variant (every key of the row's ``settings`` equal to the run's resolved value; a
    fusion row only with a fused result of as many runs of the method), on the same protocol
    and test split, a metric it has, and a corpus the row can be checked against: a stated
    release, the row's test-split size where it gives one, and a copy that matches the
    protocol's published counts. ``among``: the other results given, where a fused result finds
    the runs it fused (the fusion records their run ids only)."""
    config = result.data["config"]
    method, params, why = _method_of(result, among)
    if method is None:
        return Pairing(None, [], [], why)
    protocol = config["protocol"]
    split = test_split(reg, protocol, params.get("protocol", {}))
    spec = reg.specs["downstream"].get(method)
    candidates = spec.meta.reported if spec else ()
    same_split = [row for row in candidates if split is not None and row["protocol"] == protocol
                  and row["split"] == split and row["metric"] in result.summary]
    if not same_split:
        seen = sorted({f"{row['protocol']} / {row['split']}" for row in candidates})
        return Pairing(split, [], [], f"the paper reports {', '.join(seen)} only" if seen else "no reported numbers")
    if result.data.get("annotations", {}).get("corpus_differs"):
        return Pairing(split, [], [], "its copy of the corpus differs from the published counts (serbench data check)")
    values = _run_settings(result, params)
    same_variant = [row for row in same_split if all(values.get(k, _NOT_RECORDED) == v for k, v in _required(row).items())]
    if not same_variant:
        keys = list(dict.fromkeys(k for row in same_split for k in _required(row)))
        ran = " ".join(f"{k}={_value(values.get(k, 'not recorded'))}" for k in keys)
        variants = ", ".join(dict.fromkeys(row.get("variant", "") or settings_label(row["settings"]) for row in same_split))
        return Pairing(split, [], [], f"the paper reports no row of its variant ({ran}); its variants on "
                                      f"{protocol} / {split}: {variants}")
    pairs, not_comparable = [], []
    for row in same_variant:
        reason = _corpus_mismatch(row, result)
        if reason:
            not_comparable.append((row, reason))
        else:
            pairs.append(row)
    why = "" if pairs else "; ".join(dict.fromkeys(
        f"not comparable to the reported row {row.get('variant', '')!r}: {reason}" for row, reason in not_comparable))
    return Pairing(split, pairs, not_comparable, why)


_NOT_RECORDED = object()


def _required(row: dict) -> dict:
    """The row's settings; a row that is no fusion asks for a single model (``fused_runs`` 0)."""
    return {FUSED: 0, **row["settings"]}


def _run_settings(result: Result, params: dict) -> dict:
    """The run's resolved values under the keys reported rows use."""
    config = result.data["config"]
    values = {FUSED: len(config.get(FUSED) or ()), "pooling": config.get("pooling"), "loss": config.get("loss")}
    values.update({f"downstream.{k}": v for k, v in (params.get("downstream") or {}).items()})
    return values


def _method_of(result: Result, among: Sequence[Result]) -> tuple[str | None, dict, str]:
    """(the downstream whose paper the result answers to, its resolved parameters, why there
    is none). A fused result answers to its runs' one downstream, read from those runs among
    the results given, with their protocol parameters (which must agree)."""
    config = result.data["config"]
    fused = config.get(FUSED)
    if not fused:
        return config["downstream"], config.get("params", {}), ""
    by_id = {r.run_id: r for r in among}
    missing = [run for run in fused if run not in by_id]
    if missing:
        return None, {}, (f"a fusion of runs not among the results given ({', '.join(missing)}): which method "
                          "and test split it answers to is unknown")
    methods = sorted({by_id[run].data["config"]["downstream"] for run in fused})
    if len(methods) > 1:
        return None, {}, f"a fusion of different downstreams ({', '.join(methods)}): no paper reports it"
    settings = [by_id[run].data["config"].get("params", {}).get("protocol") for run in fused]
    if any(s != settings[0] for s in settings):
        return None, {}, "a fusion of runs with different protocol settings: its test split is not one"
    return methods[0], {"protocol": settings[0] or {}}, ""


def _corpus_mismatch(row: dict, result: Result) -> str:
    """Why this copy of the corpus cannot be taken for the paper's ('' when it can)."""
    if not row["release"]:
        return (f"the paper does not state which {row['corpus']} release it used ({RELEASE_NOT_STATED}), "
                "so no copy can be checked against it")
    if row["n_test"] is not None:
        size = test_size(result)
        if size is None:
            return "its result records no test-split size to check against the paper's"
        if size != row["n_test"]:
            return (f"its test split has {size} utterances; the paper's ({corpus_label(row)}, {row['split']}) "
                    f"has {row['n_test']}")
    return ""


def test_size(result: Result) -> int | None:
    """Utterances scored as test over the run's folds (each fold once, whatever the seeds);
    None when a fold record lacks its ``n_test``."""
    sizes: dict[str, object] = {}
    for record in result.data.get("folds") or ():
        sizes.setdefault(str(record.get("fold")), record.get("n_test"))
    if not sizes or not all(isinstance(n, int) for n in sizes.values()):
        return None
    return sum(sizes.values())  # type: ignore[arg-type]


def checkpoint_differs(row: dict, result: Result) -> str:
    """'' when the run's encoder is the checkpoint the row names (``checkpoint``: a Hugging Face
    repo id, matched against the start of the run's ``upstream_fingerprint``); else what
    differs, to be shown beside the row. A row whose paper leaves it ``unclear`` says so."""
    named = row.get("checkpoint")
    if not named:
        return ""
    if named.startswith("unclear"):
        return "the paper's checkpoint is unclear"
    used = str(result.data.get("upstream_fingerprint") or "").split("@")[0] or result.data["config"]["upstream"]
    return "" if used == named else f"another checkpoint ({used}; the paper's: {named})"


def training_share(row: dict, result: Result) -> str:
    """Beside a measured cell, for a row whose paper trained on a stated split
    (``train_split``): the share of the training sessions' utterances the run trained on, the
    rest held out as dev for model selection (counted from the run's folds)."""
    folds = result.data.get("folds") or []
    trained, held = sum(f.get("n_train", 0) for f in folds), sum(f.get("n_dev", 0) for f in folds)
    everything = ((result.data["config"].get("params") or {}).get("train") or {}).get("select_split") == "none"
    if row.get("train_split") and trained and everything:  # -o train.select_split=none: dev joined train
        return f"; trained on 100% of the training speakers' utterances, last epoch (the paper: {row['train_split']})"
    if not row.get("train_split") or not held or not trained:
        return ""
    return (f"; trained on {100 * trained / (trained + held):.0f}% of the training speakers' utterances "
            f"({100 * held / (trained + held):.0f}% held out as dev; the paper: {row['train_split']})")


def reported_for(result: Result, reg, among: Sequence[Result] = ()) -> tuple[str | None, list[dict], str]:
    """(the run's test split, the reported rows it pairs with, why there are none): see
    :func:`pairing`."""
    found = pairing(result, reg, among)
    return found.split, found.pairs, found.why


def beside_reported(results: Sequence[Result], reg, ci: str = "t") -> str:
    """Each measured result beside its method's reported rows, paired only like with like:
    same downstream variant, protocol, test split and metric, on a corpus matching the row's
    release and split size. A row of the same variant whose corpus cannot be checked is shown
    as not comparable, with the reason; a result with no row of its variant is listed under
    the table with the reason, never paired with another variant's, protocol's or split's number."""
    _check_ci(ci)
    table, unpaired, reasons = [], [], []
    for r in sorted(results, key=lambda r: (r.data["config"]["downstream"], r.data["config"]["protocol"])):
        config = r.data["config"]
        method, protocol = config["downstream"], config["protocol"]
        found = pairing(r, reg, results)
        if not found.pairs and not found.not_comparable:
            unpaired.append(f"{r.data['run_id']} ({method}, {protocol} / {found.split or 'test split not declared'}): {found.why}")
            continue
        recipe = (config.get("recipe") or {}).get("name", "")
        measured = ", ".join([config["upstream"], config["pooling"] or "fused"] + ([f"recipe {recipe}"] if recipe else []))
        if ((config.get("params") or {}).get("train") or {}).get("select_split") == "test":
            measured += ", epoch selected on the scored split (optimistic)"
        shown = [(row, "") for row in found.pairs] + found.not_comparable
        for row, reason in shown:
            if reason and reason not in reasons:
                reasons.append(reason)
            value = (f"not comparable [{reasons.index(reason) + 1}]" if reason
                     else f"{row['value'] * UNITS[row['unit']]:.2f}")
            differs = checkpoint_differs(row, r)
            table.append([method, protocol, found.split, COLUMNS.get(row["metric"], row["metric"]),
                          measured + (f"; {differs}" if differs else "") + training_share(row, r),
                          cell(r.summary[row["metric"]], ci),
                          row.get("variant", ""), f"{row['encoder']}, {row['pooling']}",
                          f"{corpus_label(row)}; {split_label(row)}", value])
    headers = ["downstream", "protocol", "test split", "metric", "measured with", "measured (%)", "reported variant",
               "reported with", "reported on", "reported (%)"]
    note = "Student-t over folds" if ci == "t" else "cluster interval (folds or speakers as clusters)"
    body = tabulate(table, headers=headers, tablefmt="pipe", disable_numparse=True) if table else "(no result pairs with a reported row)"
    why_not = "".join(f"\n[{k}] {reason}" for k, reason in enumerate(reasons, start=1))
    tail = "".join(f"\n- {line}" for line in unpaired)
    return (f"{body}\n\nMeasured: mean ± half-width of the 95% confidence interval ({note}); reported: as published "
            f"(in percent). Rows pair only the same variant (the row's settings), protocol, test split and metric, "
            f"on a corpus matching the row's release and test-split size."
            + (f"\n\nNot comparable to the reported row:{why_not}" if reasons else "")
            + (f"\n\nNot paired:{tail}" if unpaired else "") + "\n")
