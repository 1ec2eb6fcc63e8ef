"""The ``serbench`` command: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from serbench import leaderboard, recipes, stage_recipes, user_config
from serbench.atomic import write_json, write_text
from serbench.corpus import SPEAKERS_UNKNOWN
from serbench.errors import SerbenchError, did_you_mean
from serbench.meta import DownstreamMeta
from serbench.progress import Reporter
from serbench.registry import check_kind, registry
from serbench.specs import KINDS

if TYPE_CHECKING:
    from serbench.results import Result

EPILOG = "Docs: README.md and docs/. Bad input exits with status 2 and one line naming what is wrong."


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line, like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise SerbenchError(f"{self.prog}: {message} (see {self.prog} --help)")


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",")] if text.strip() else []
    except ValueError:
        raise SerbenchError(f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="serbench", description="Benchmark speech emotion recognition.", epilog=EPILOG)
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (also accepted after the command; SERBENCH_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a downstream on an upstream under a protocol")
    run.add_argument("--upstream", required=True, help="encoder, e.g. wavlm_large, fbank")
    run.add_argument("--downstream", required=True, help="method, e.g. superb, sap_gap")
    run.add_argument("--pooling", help="pooling (default: the downstream's own)")
    run.add_argument("--loss", help="loss (default: the downstream's, else the protocol's)")
    run.add_argument("--protocol", default="iemocap_5fold", help="evaluation protocol (default: %(default)s)")
    run.add_argument("--recipe", choices=recipes.CHOICES,
                     help="paper: the method's published training recipe (default for a method that has one); "
                          "shared: the harness's common frozen-encoder recipe. -o always wins")
    run.add_argument("--data", help="corpus location (default: saved with 'serbench config set data.KEY')")
    run.add_argument("--seeds", type=_seeds, default=[0], help="comma-separated seeds (default: 0)")
    run.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: auto)")
    run.add_argument("--prepare", action="store_true",
                     help="check everything and create the run directory; print its units (for serbench job) and compute nothing")
    run.add_argument("--executor", default="local", help="where the jobs run (serbench list executors; -o executor.KEY=VALUE)")
    run.add_argument("--out", default="runs", help="where run directories go (default: runs/)")
    run.add_argument("-o", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a parameter: upstream.*, downstream.*, pooling.*, loss.*, protocol.*, train.*")
    run.add_argument("--quiet", action="store_true", help="print only the final table")

    lst = sub.add_parser("list", help="list plugins of one kind, or one plugin's parameters")
    lst.add_argument("kind", nargs="?", help=f"one of {', '.join(k + 's' for k in KINDS)}")
    lst.add_argument("name", nargs="?", help="a plugin name: show its parameters")

    sub.add_parser("plugins", help="installed plugins as JSON, with load errors")

    check = sub.add_parser("check-plugin", help="run one plugin through the conformance checks on small random inputs")
    check.add_argument("kind", help="upstream, downstream, pooling, loss or protocol")
    check.add_argument("name")
    check.add_argument("-o", dest="overrides", action="append", default=[], metavar="KIND.KEY=VALUE",
                       help="a parameter of the plugin")
    check.add_argument("--data", help="a protocol's corpus")

    docs = sub.add_parser("docs", help="rebuild the generated tables of docs/ (commands, options, plugins, hooks)")
    docs.add_argument("--readme", type=Path, default=Path("README.md"),
                      help="the checkout's README; the docs/ pages beside it are rebuilt (default: %(default)s)")
    docs.add_argument("--check", action="store_true", help="only say which sections are stale (exit 1 if any)")

    splits = sub.add_parser("splits", help="every fold's train / dev / test membership as JSON lines")
    splits.add_argument("protocol")
    splits.add_argument("--data", help="corpus location (default: the saved one)")
    splits.add_argument("--out", help="write to this file instead of stdout")
    splits.add_argument("-o", dest="overrides", action="append", default=[], metavar="protocol.KEY=VALUE")

    data = sub.add_parser("data", help="corpus tools")
    data_sub = data.add_subparsers(dest="action", required=True, parser_class=_Parser)
    check = data_sub.add_parser("check", help="validate a corpus copy against the protocol's published counts")
    check.add_argument("protocol")
    check.add_argument("--data", help="corpus location (default: the saved one)")
    check.add_argument("-o", dest="overrides", action="append", default=[], metavar="protocol.KEY=VALUE")

    board = sub.add_parser("leaderboard", help="markdown table from result files or run directories")
    board.add_argument("results", nargs="*", metavar="RESULT", help="result.json files or run directories")
    board.add_argument("--reported", action="store_true", help="the papers' reported numbers from the plugins' metadata; with results: each result beside the reported rows of the same variant, protocol and test split")
    board.add_argument("-o", "--output", help="write the table to this file instead of stdout")
    board.add_argument("--ci", default="t", choices=leaderboard.CI_KINDS, help="interval shown (default: t)")
    board.add_argument("--latex", metavar="FILE", help="also write the table as LaTeX (booktabs)")
    board.add_argument("--csv", metavar="FILE", help="also write the table as CSV (means and both intervals, in percent)")
    board.add_argument("--html", metavar="DIR", help="also write a static site (index, one page per run, figures) into DIR")

    fuse = sub.add_parser("fuse", help="late fusion of runs, per-class weights fitted on dev (COBYLA)")
    fuse.add_argument("runs", nargs="+", metavar="RUN_DIR")
    fuse.add_argument("--out", required=True, help="the fused run directory to write")

    job = sub.add_parser("job", help="run one (fold, seed) job of an existing run directory, or every job it can claim (for any scheduler)")
    job.add_argument("run_dir", metavar="RUN_DIR")
    job.add_argument("--fold", help="fold name, as in serbench status (with --seed; neither: every job it can claim)")
    job.add_argument("--seed", type=int)
    job.add_argument("--shard", metavar="I/N", help="extract shard I of N (1-based) of the run's frozen features into the cache")
    job.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (not part of the run's identity)")
    job.add_argument("--quiet", action="store_true", help="no progress bars")
    compare = sub.add_parser("compare", help="paired significance between runs scored on the same test utterances")
    compare.add_argument("runs", nargs="+", metavar="RUN_DIR")
    compare.add_argument("--baseline", metavar="RUN_DIR", help="compare each run with this one (default: every pair)")
    compare.add_argument("--resamples", type=int, default=10_000, help="random swap sets when 2^speakers is too many")
    compare.add_argument("--json", default="compare.json", help="where to write the comparison (default: compare.json)")
    plot = sub.add_parser("plot", help="figures of a finished run into RUN_DIR/figures (pip install 'serbench[plot]')")
    plot.add_argument("run_dir", metavar="RUN_DIR")
    plot.add_argument("--format", default="svg,png", help="comma-separated: svg, png (default: both)")
    finish = sub.add_parser("finish", help="summarise a run whose jobs are all done: result.json, predictions.csv")
    finish.add_argument("run_dir", metavar="RUN_DIR")
    scoring = sub.add_parser("score", help="a run's metrics and intervals for a predictions CSV made anywhere "
                                           "(fold, seed, utterance_id, speaker, label, prediction)")
    scoring.add_argument("files", nargs="+", metavar="PREDICTIONS.csv", help="each scored on its own")
    scoring.add_argument("--classes", help="comma-separated class order (default: a run's, else the sorted labels "
                                           "and predictions); also names a class never predicted")
    scoring.add_argument("--json", metavar="FILE", help="also write every file's scores as a JSON list, in order")

    bench = sub.add_parser("bench", help="run a benchmark suite (benchmarks/NAME.toml) and write its leaderboard")
    bench.add_argument("suite", metavar="SUITE.toml")
    bench.add_argument("--out", default="runs", help="where the runs go (default: runs)")
    bench.add_argument("--executor", default="local", help="where the jobs run (serbench list executors)")
    bench.add_argument("-o", dest="overrides", action="append", default=[], metavar="executor.KEY=VALUE",
                       help="executor options, e.g. -o executor.workers=2")
    bench.add_argument("--dry-run", action="store_true", help="list the cells and their jobs; run nothing")
    bench.add_argument("--leaderboard", help="where the table goes (default: leaderboards/NAME.md)")
    bench.add_argument("--html", metavar="DIR", help="also write the suite's static site into DIR (see leaderboard --html)")

    status = sub.add_parser("status", help="a run's jobs: done, running (by whom), stale, failed (why), pending")
    status.add_argument("run_dir", metavar="RUN_DIR")

    cache = sub.add_parser("cache", help="the feature cache under $SERBENCH_CACHE")
    cache.add_argument("action", choices=("ls", "du", "clear"), help="list folders, total size, or delete")
    cache.add_argument("--upstream", help="only this upstream's features")

    cfg = sub.add_parser("config", help="saved settings, e.g. corpus locations")
    cfg_sub = cfg.add_subparsers(dest="action", required=True, parser_class=_Parser)
    setter = cfg_sub.add_parser("set", help="save KEY=VALUE, e.g. data.iemocap /data/IEMOCAP_full_release")
    setter.add_argument("key")
    setter.add_argument("value")
    getter = cfg_sub.add_parser("get", help="print one setting")
    getter.add_argument("key")
    unsetter = cfg_sub.add_parser("unset", help="forget one setting")
    unsetter.add_argument("key")
    cfg_sub.add_parser("list", help="print every setting and the file they live in")
    return parser


def summary_table(result: Result, title: str | None = None) -> Table:
    table = Table(title=title or f"{result.run_id}  ({result.data['config']['protocol']}, "
                                 f"{len(result.data['folds'])} fold x seed jobs)")
    for column in ("metric", "mean %", "std", "95% CI (t, folds)", leaderboard.cluster_header(result.summary["ua"])):
        table.add_column(column, justify="right" if column != "metric" else "left")

    from serbench.stats import clip

    def span(interval: list[float] | None, why: str) -> str:
        interval = clip(interval)  # results written before intervals were clipped
        return why if interval is None else f"[{interval[0] * 100:.2f}, {interval[1] * 100:.2f}]"

    for metric, name in leaderboard.COLUMNS.items():
        entry = result.summary[metric]
        cluster = entry.get("cluster") or {}
        table.add_row(name, f"{entry['mean'] * 100:.2f}", f"{entry['std'] * 100:.2f}",
                      span(entry["ci95"], "n/a (1 fold)"),
                      span(entry["ci95_bootstrap"], "none: " + str(cluster.get("reason") or "too few clusters")))
    return table


def run_notes(result: Result) -> list[str]:
    """What a reader of the table must know about its speakers: a speaker-dependent protocol
    (the score includes knowing the voice) and unknown speakers (the speaker-level columns
    resample utterances). Empty for a result made before ``speakers`` was recorded."""
    record = result.data.get("speakers")
    if not isinstance(record, dict):
        return []
    notes = []
    if record.get("speaker_dependent"):
        notes.append("speaker-dependent protocol: the same speakers are in train and test")
    if record.get("known") is False:
        source = str(record.get("source"))
        where = "each utterance its own pseudo-speaker" if source == SPEAKERS_UNKNOWN else source
        notes.append(f"speakers unknown ({where}): speaker-level statistics are utterance-level")
    return notes


def cmd_run(args: argparse.Namespace, out: Console) -> None:
    from serbench.execute import execute
    from serbench.plan import plan

    the_plan = plan(args.upstream, args.downstream, args.pooling, args.loss, args.protocol, args.data,
                    args.seeds, args.device, args.overrides, recipe=args.recipe, executor=args.executor)
    if args.prepare:
        from serbench.execute import open_run, prepare, runs_folder

        run_dir = runs_folder(args.out) / the_plan.run_id
        jobs = open_run(prepare(the_plan, run_dir))
        print(f"prepared {run_dir}: {len(jobs)} jobs; run them anywhere that sees this directory and the cache:")
        quoted = shlex.quote(str(run_dir))  # a line to paste into a shell: --out may hold spaces or $
        print(f"  serbench job {quoted} --shard I/N      # frozen features, shard I of N (optional: jobs extract their own)")
        for job in jobs:
            print(f"  serbench job {quoted} --fold {job.fold} --seed {job.seed}")
        print(f"  serbench finish {quoted}")
        return
    result = execute(the_plan, args.out, Reporter(quiet=args.quiet))
    out.print(summary_table(result))
    for note in run_notes(result):
        out.print(f"note: {escape(note)}")
    out.print(f"result: {result.run_dir / 'result.json'}")


def cmd_list(args: argparse.Namespace, out: Console) -> None:
    reg = registry()
    if args.name:
        spec = reg.get(check_kind(args.kind), args.name)
        out.print(f"[bold]{spec.name}[/bold] ({check_kind(args.kind)}, plugin {spec.plugin}, version {spec.version})")
        out.print(escape(spec.summary))
        if spec.citation:
            out.print(f"citation: {spec.citation}")
        if spec.doc():
            out.print(escape(spec.doc()))
        table = Table("parameter", "type", "default", "description")
        for p in spec.params:
            choices = f" (one of {', '.join(map(str, p.choices))})" if p.choices else ""
            choices += f" ({p.range_text})" if p.bounds else ""
            table.add_row(p.name, p.type.__name__, repr(p.default), escape(p.doc + choices))
        out.print(table if spec.params else "no parameters")
        if check_kind(args.kind) == "downstream":
            _print_method(spec.meta, spec.citation, out, {f"downstream.{p.name}": p.default for p in spec.params})
        return
    kinds = [check_kind(args.kind)] if args.kind else list(KINDS)
    table = Table("kind", "name", "plugin", "version", "summary")
    for kind in kinds:
        for name in sorted(reg.specs[kind]):
            spec = reg.specs[kind][name]
            table.add_row(kind, name, spec.plugin, spec.version, escape(spec.summary))
    out.print(table)


def _print_method(meta: DownstreamMeta, citation: str, out: Console, defaults: dict | None = None) -> None:
    """A downstream's paper: its recipe (stage by stage), its own pooling, its reported numbers.
    ``defaults``: the downstream's parameter defaults as ``downstream.NAME`` keys."""
    recipe = meta.recipe
    if recipe is not None:
        out.print(f"recipe paper (default; --recipe shared for the harness's): {recipe.describe()}")
        out.print(f"  source: {recipe.source}")
        if recipe.suggested:
            out.print("  the paper ran: " + recipes.suggestion(recipe.suggested))
        if recipe.demo:
            out.print("  demo-sized variant on demo corpora: " + ", ".join(f"{k}={v}" for k, v in recipe.demo.items())
                      + f" ({recipe.demo_why})")
        for choice, why in recipe.own_choices.items():
            out.print(f"  the plugin's own choice (not the paper's): {choice}: {why}")
        for key, splits in recipe.only_when_scored_on.items():
            out.print(f"  {key} applies only to runs scored on {' or '.join(splits)}")
        for line in stage_recipes.listing(recipe.stages, {**(defaults or {}), **recipe.overrides}):
            out.print("  " + escape(line))
    if meta.own_pooling:
        out.print(f"pools with its own {meta.own_pooling} (takes no --pooling)")
    reported = meta.reported
    if reported:
        table = Table("protocol", "corpus", "test split", "variant", "encoder", "pooling", "metric", "reported (%)",
                      title=f"reported by {meta.paper or citation} (their setup; not measured here)")
        for row in reported:
            scale = leaderboard.UNITS.get(row.get("unit"), 1.0)
            table.add_row(row["protocol"], leaderboard.corpus_label(row), leaderboard.split_label(row),
                          leaderboard.settings_label(row.get("settings") or {}), row["encoder"], row["pooling"],
                          row["metric"], f"{row['value'] * scale:.2f}")
        out.print(table)


def cmd_plugins(args: argparse.Namespace, out: Console) -> None:
    from importlib.metadata import PackageNotFoundError, version

    reg = registry()
    entries = []
    for name, module in reg.plugins.manager.list_name_plugin():
        dist = reg.plugins.origins.get(name, "")
        try:
            dist_version = version(dist) if dist else None
        except PackageNotFoundError:
            dist_version = None
        entries.append({
            "name": name,
            "distribution": dist,
            "version": dist_version,
            "module": getattr(module, "__name__", repr(module)),
            "hooks": reg.hooks_by_plugin.get(name, []),
            "registers": reg.names_by_plugin.get(name, []),
            "error": reg.plugins.failures.get(name),
        })
    registered = {e["name"] for e in entries}
    for name, error in reg.plugins.failures.items():
        if name not in registered:
            entries.append({"name": name, "distribution": None, "version": None, "module": None,
                            "hooks": [], "registers": [], "error": error})
    print(json.dumps(entries, indent=2))


def cmd_splits(args: argparse.Namespace, out: Console) -> None:
    from serbench.plan import load_protocol

    protocol = load_protocol(args.protocol, args.data, args.overrides)
    lines = []
    for fold in protocol.folds:
        for split, ids in (("train", fold.train), ("dev", fold.dev), ("test", fold.test)):
            for i in ids:
                u = protocol.utterances[i]
                lines.append(json.dumps({"fold": fold.name, "split": split, "utterance_id": i, "label": u.label,
                                         "speaker": u.speaker, "gender": u.gender, "session": u.session}))
    text = "\n".join(lines) + "\n"
    if args.out:
        write_text(args.out, text)
        out.print(f"wrote {len(lines)} lines for {len(protocol.folds)} folds to {args.out}")
    else:
        print(text, end="")


def cmd_data(args: argparse.Namespace, out: Console) -> int:
    from serbench.datacheck import check
    from serbench.plan import load_protocol

    protocol = load_protocol(args.protocol, args.data, args.overrides)
    report = check(protocol)
    table = Table("count", "expected", "found", "", title=f"{protocol.name}: {len(protocol.utterances)} utterances")
    for key, expected, found in report.rows:
        mark = "" if expected is None else ("ok" if expected == found else "MISMATCH")
        table.add_row(key, "-" if expected is None else str(expected), str(found), mark)
    out.print(table)
    if report.seconds:
        hours = sum(report.seconds) / 3600
        rates = ", ".join(f"{rate} Hz: {n}" for rate, n in sorted(report.sample_rates.items()))
        out.print(f"audio: {hours:.2f} h, {min(report.seconds):.3f} s to {max(report.seconds):.2f} s; {rates}"
                  + ("" if set(report.sample_rates) == {16000} else " (resampled to 16 kHz on load)"))
    for note in report.notes:
        out.print(f"note: {escape(note)}")
    for problem in report.problems:
        print(f"serbench: problem: {problem}", file=sys.stderr)
    if not report.ok:
        mismatch = any(e is not None and e != f for _, e, f in report.rows)  # else only the problems above
        print(f"serbench: error: {protocol.name}: " + ("the corpus differs from the published definition" if mismatch
              else f"{len(report.problems)} problem(s) above: a run on this corpus would be refused"), file=sys.stderr)
        return 1
    out.print("corpus matches the protocol")
    return 0


def cmd_fuse(args: argparse.Namespace, out: Console) -> None:
    from serbench.fusion import fuse

    result = fuse(args.runs, args.out)
    out.print(summary_table(result))
    used = result.data["config"]["jobs_used"]
    out.print(f"fused the jobs every run has: folds {', '.join(used['folds'])}; seeds {', '.join(map(str, used['seeds']))}")
    for run, dropped in result.data["config"]["left_out"].items():
        out.print(f"left out of {run} (not in every run): {', '.join(dropped)}")
    out.print(f"result: {result.run_dir / 'result.json'}")


def cmd_leaderboard(args: argparse.Namespace, out: Console) -> None:
    results, skipped = leaderboard.load_finished(args.results)
    if args.results and not results:  # one line, naming a folder to look at
        raise SerbenchError(f"serbench leaderboard: none of the {len(skipped)} folders given has a result.json (first: "
                            f"{skipped[0]}; unfinished or failed runs: serbench status {skipped[0]})")
    for folder in skipped:
        print(f"serbench: skipped {folder}: no result.json (unfinished or failed: serbench status {folder})", file=sys.stderr)
    if args.html and results:  # refused before --latex or --csv writes anything
        from serbench.site import check_inputs

        check_inputs(results)
    for option, path, render in (("--latex", args.latex, leaderboard.latex), ("--csv", args.csv, None)):
        if path:
            if not results:
                raise SerbenchError(f"serbench leaderboard {option}: give result files or run directories")
            write_text(path, render(results, args.ci) if render else leaderboard.csv_table(results))
            out.print(f"wrote {path}")
    if args.html:
        from serbench.site import build

        if not results:
            raise SerbenchError("serbench leaderboard --html: give result files or run directories")
        index = build(results, args.html, registry(), args.ci)
        out.print(f"wrote {index} (open it in a browser; it needs no server)")
    if args.reported and results:
        text = leaderboard.beside_reported(results, registry(), args.ci)
    elif args.reported:
        text = leaderboard.reported(registry())
    elif results:
        text = leaderboard.markdown(results, args.ci)
    else:
        raise SerbenchError("serbench leaderboard: give result files or run directories, or --reported")
    if args.output:
        write_text(args.output, text)
        out.print(f"wrote {args.output}")
    else:
        print(text, end="")


def cmd_job(args: argparse.Namespace, out: Console) -> None:
    import os

    if (args.fold is None) != (args.seed is None):
        raise SerbenchError("serbench job: give both --fold and --seed, or neither (every job this worker can claim)")
    if args.shard and args.fold is not None:
        raise SerbenchError("serbench job: --shard extracts features; give it without --fold/--seed")
    threads = os.environ.get("SERBENCH_TORCH_THREADS")  # set by an executor for its workers
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    from serbench.execute import Shard, execute, work_unit
    from serbench.plan import load_plan
    from serbench.results import Job

    run_dir = Path(args.run_dir)
    if args.shard:
        index, _, count = args.shard.partition("/")
        if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
            raise SerbenchError(f"--shard {args.shard}: expected I/N with 1 <= I <= N, e.g. --shard 1/4")
        out.print(work_unit(run_dir, Shard(int(index) - 1, int(count)), args.device, args.quiet) + f" ({run_dir})")
    elif args.fold is not None:
        out.print(work_unit(run_dir, Job(args.fold, args.seed), args.device, args.quiet) + f" ({run_dir})")
    else:
        execute(load_plan(run_dir, args.device), run_dir.parent, Reporter(quiet=args.quiet), summarise=False,
                in_process=True)
        out.print(f"every claimable job: done ({run_dir})")


def cmd_compare(args: argparse.Namespace, out: Console) -> None:
    from serbench.compare import compare

    data = compare(args.runs, args.baseline, args.resamples)
    table = Table("A", "B", "metric", "A - B (pp)", "95% CI (test inverted)", "p (permutation)", "p (Holm)",
                  title=f"{data['protocol']}: paired, {data['speakers']} speakers, {len(data['jobs'])} (fold, seed) jobs")
    for row in data["comparisons"]:
        for metric, name in leaderboard.COLUMNS.items():
            entry = row["metrics"][metric]
            lo, hi = entry["ci95"]
            table.add_row(row["a_id"], row["b_id"], name, f"{entry['difference'] * 100:+.2f}",
                          f"[{lo * 100:+.2f}, {hi * 100:+.2f}]", f"{entry['p']:.4f}", f"{entry['p_holm']:.4f}")
    out.print(table)
    first = data["comparisons"][0]
    how = (f"exact over all 2^{data['speakers']} = {first['swaps']} speaker swap sets" if first["exact"]
           else f"{first['swaps'] - 1} random speaker swap sets")
    out.print(f"test: {data['test']}, {how}; p floor {first['p_floor']:.4g} (no p-value can be smaller with "
              f"{data['speakers']} speakers); statistic: {data['statistic']}")
    write_json(args.json, data)
    out.print(f"wrote {args.json}")


def cmd_plot(args: argparse.Namespace, out: Console) -> None:
    from serbench.plots import plot_run

    written = plot_run(args.run_dir, tuple(f.strip() for f in args.format.split(",") if f.strip()))
    out.print(f"wrote {len(written)} figures to {written[0].parent}")


def cmd_finish(args: argparse.Namespace, out: Console) -> None:
    from serbench.execute import execute
    from serbench.plan import load_plan

    run_dir = Path(args.run_dir)
    result = execute(load_plan(run_dir, "cpu"), run_dir.parent, Reporter(quiet=True), only=[])
    out.print(summary_table(result))
    for note in run_notes(result):
        out.print(f"note: {escape(note)}")
    out.print(f"result: {result.run_dir / 'result.json'}")


def cmd_score(args: argparse.Namespace, out: Console) -> None:
    from serbench.results import Result
    from serbench.score import parse_classes, score_files

    scored = score_files(args.files, parse_classes(args.classes) if args.classes is not None else None)
    for entry in scored:
        title = f"{entry['file']}  ({len(entry['folds'])} fold x seed jobs, {len(entry['classes'])} classes)"
        out.print(summary_table(Result({"run_id": entry["file"], **entry}, Path(entry["file"]).parent), title))
        for note in entry["notes"]:
            out.print(f"note: {escape(note)}")
    if args.json:
        write_json(args.json, scored)
        out.print(f"wrote {args.json}")


def cmd_bench(args: argparse.Namespace, out: Console) -> None:
    from serbench import cache, claims, suites
    from serbench.execute import execute

    bad = [o for o in args.overrides if not o.startswith("executor.")]
    if bad:
        raise SerbenchError(f"-o {bad[0]}: serbench bench takes executor options only; cells set their own in the suite")
    suite = suites.load(args.suite)
    plans = suites.plans(suite, args.executor, tuple(args.overrides))  # every cell checked before any work
    if args.dry_run:
        rows, total_jobs, total_bytes = suites.dry_run(suite, plans, Path(args.out))
        table = Table("line", "cell", "jobs", "features", "run id")
        for row in rows:
            table.add_row(*row)
        out.print(table)
        out.print(f"{len(plans)} cells, {total_jobs} jobs (folds x seeds); feature cache: about "
                  f"{cache.human_bytes(total_bytes)} in all, each (encoder, layers, corpus) counted once")
        return
    results = []
    for k, (cell, the_plan) in enumerate(zip(suite.cells, plans), start=1):
        run_dir = Path(args.out) / the_plan.run_id
        before = (run_dir / "jobs.json").exists() and all(state == "done" for *_, state, _ in claims.status(run_dir))
        result = execute(the_plan, args.out, Reporter(quiet=True))
        results.append(result)
        main = result.data.get("main_metric", "ua")
        out.print(f"[{k}/{len(plans)}] {cell.label}: {main.upper()} {result.summary[main]['mean'] * 100:.2f}"
                  + (" (done before: resumed, nothing computed)" if before else "") + f"  {result.run_dir}")
    target = Path(args.leaderboard or Path("leaderboards") / f"{suite.name}.md")
    write_text(target, suites.leaderboard(suite, results))
    out.print(f"wrote {target}")
    if args.html:
        from serbench.site import build

        out.print(f"wrote {build(results, args.html, registry())} (open it in a browser; it needs no server)")


def cmd_status(args: argparse.Namespace, out: Console) -> None:
    from collections import Counter

    from serbench import claims

    rows = claims.status(Path(args.run_dir))
    table = Table("fold", "seed", "state", "claimed by / error")
    for fold, seed, state, who in rows:
        table.add_row(fold, str(seed), state, escape(who))
    out.print(table)
    counts = Counter(state for _, _, state, _ in rows)
    out.print(", ".join(f"{counts[s]} {s}" for s in ("done", "running", "stale", "failed", "pending") if counts[s]))


def cmd_cache(args: argparse.Namespace, out: Console) -> None:
    from serbench import cache

    root = user_config.cache_dir()
    if args.action == "clear":
        removed = cache.clear(root, args.upstream)
        freed = sum(e.bytes for e in removed)
        out.print(f"removed {len(removed)} cache folders ({cache.human_bytes(freed)}) from {root / 'features'}")
        return
    entries = [e for e in cache.scan(root) if args.upstream is None or e.meta.get("upstream") == args.upstream]
    if args.action == "du":
        print(f"{cache.human_bytes(sum(e.bytes for e in entries))}\t{sum(e.entries for e in entries)} entries\t{root / 'features'}")
        return
    table = Table("upstream", "fingerprint", "layers", "dtype", "entries", "size", "folder")
    for e in entries:
        layers = e.meta.get("layers", [])
        shown = ",".join(map(str, layers)) if len(layers) <= 6 else f"{len(layers)}: {layers[0]}..{layers[-1]}"
        table.add_row(e.meta.get("upstream", "?"), e.meta.get("fingerprint", "?"), shown, e.meta.get("dtype", "?"),
                      str(e.entries), cache.human_bytes(e.bytes), e.folder.name)
    out.print(table)


def cmd_config(args: argparse.Namespace, out: Console) -> None:
    if args.action == "set":
        known = sorted({f"data.{spec.meta.data_key}" for spec in registry().specs["protocol"].values() if spec.meta.data_key})
        if args.key not in known:
            raise SerbenchError(f"config key {args.key!r} is not a setting serbench reads{did_you_mean(args.key, known)}; "
                                f"known: {', '.join(known)}")
        location = Path(args.value).expanduser().absolute()  # a relative path would depend on where a run starts
        path = user_config.set_value(args.key, str(location))
        out.print(f"{args.key} = {location}  (saved in {path})" + ("" if location.exists() else "; it does not exist yet"))
    elif args.action == "get":
        data = user_config.load()
        if args.key not in data:
            raise SerbenchError(f"config key {args.key!r} is not set ({user_config.config_path()})")
        print(data[args.key])
    elif args.action == "unset":
        user_config.unset_value(args.key)
        out.print(f"unset {args.key}")
    else:
        out.print(f"# {user_config.config_path()}")
        for key, value in sorted(user_config.load().items()):
            print(f"{key} = {value}")


def cmd_check_plugin(args, out: Console) -> int:
    from serbench.plugin_check import check_plugin

    checks = check_plugin(args.kind, args.name, args.overrides, args.data)
    table = Table("check", "result", "detail")
    for check in checks:
        table.add_row(escape(check.name), "[green]pass[/green]" if check.passed else "[red]FAIL[/red]", escape(check.detail))
    out.print(table)
    failed = [c for c in checks if not c.passed]
    out.print(f"{args.kind} {args.name}: " + (f"{len(failed)} of {len(checks)} checks failed" if failed else f"all {len(checks)} checks pass"))
    return 1 if failed else 0


def cmd_docs(args, out: Console) -> int:
    from serbench.docs import update

    if not args.readme.is_file():
        raise SerbenchError(f"--readme {args.readme}: no such file")
    stale = update(args.readme.parent, check=args.check)
    if args.check:
        out.print(f"stale: {', '.join(stale)} (run serbench docs)" if stale else "docs tables are current")
        return 1 if stale else 0
    out.print(f"rebuilt: {', '.join(stale)}" if stale else "docs tables were current")
    return 0


COMMANDS = {"run": cmd_run, "docs": cmd_docs, "check-plugin": cmd_check_plugin, "list": cmd_list, "plugins": cmd_plugins, "splits": cmd_splits,
            "data": cmd_data, "fuse": cmd_fuse, "leaderboard": cmd_leaderboard, "cache": cmd_cache, "config": cmd_config,
            "status": cmd_status, "job": cmd_job, "finish": cmd_finish, "compare": cmd_compare, "plot": cmd_plot,
            "bench": cmd_bench, "score": cmd_score}


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"serbench: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    warnings.formatwarning = _one_line_warning
    out = Console()
    if not out.is_terminal:  # files and pipes get full-width tables, not 80 columns
        out = Console(width=160)
    if argv is None:  # the command itself (not a caller's in-process use): Ctrl-C acts within seconds
        from serbench.interrupt import stop_within_seconds

        stop_within_seconds()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("SERBENCH_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args, out) or 0
    except SerbenchError as exc:
        if debug:
            traceback.print_exc()
        print(f"serbench: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the machine refused (permissions, a file where a folder goes, a full disk)
        if debug:
            traceback.print_exc()
        where = f": {exc.filename}" if exc.filename else ""
        print(f"serbench: error: {exc.strerror or exc}{where} (--debug shows where)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("serbench: interrupted; finished jobs are kept, rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
