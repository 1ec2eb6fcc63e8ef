"""Commands over finished results: leaderboard, fuse, compare, plot, score."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from serbench.api.atomic import write_json, write_text
from serbench.api.errors import SerbenchError
from serbench.cli.tables import summary_table
from serbench.report import leaderboard
from serbench.run.registry import registry


def cmd_fuse(args: argparse.Namespace, out: Console) -> None:
    from serbench.report.fusion import fuse

    result = fuse(args.runs, args.out)
    out.print(summary_table(result))
    used = result.data["config"]["jobs_used"]
    out.print(f"fused the jobs every run has: folds {', '.join(used['folds'])}; seeds {', '.join(map(str, used['seeds']))}")
    for run, dropped in result.data["config"]["left_out"].items():
        out.print(f"left out of {run} (not in every run): {', '.join(dropped)}")
    out.print(f"result: {result.dir.result}")


def cmd_leaderboard(args: argparse.Namespace, out: Console) -> None:
    results, skipped = leaderboard.load_finished(args.results)
    if args.results and not results:  # one line, naming a folder to look at
        raise SerbenchError(f"serbench leaderboard: none of the {len(skipped)} folders given has a result.json (first: "
                            f"{skipped[0]}; unfinished or failed runs: serbench status {skipped[0]})")
    for folder in skipped:
        print(f"serbench: skipped {folder}: no result.json (unfinished or failed: serbench status {folder})", file=sys.stderr)
    if args.html and results:  # refused before --latex or --csv writes anything
        from serbench.report.site import check_inputs

        check_inputs(results)
    for option, path, render in (("--latex", args.latex, leaderboard.latex), ("--csv", args.csv, None)):
        if path:
            if not results:
                raise SerbenchError(f"serbench leaderboard {option}: give result files or run directories")
            write_text(path, render(results, args.ci) if render else leaderboard.csv_table(results))
            out.print(f"wrote {path}")
    if args.html and not results:
        raise SerbenchError("serbench leaderboard --html: give result files or run directories")
    if args.reported and results:
        text = leaderboard.beside_reported(results, registry(), args.ci)
    elif args.reported:
        text = leaderboard.reported(registry())
    elif results:
        text = leaderboard.markdown(results, args.ci)
    else:
        raise SerbenchError("serbench leaderboard: give result files or run directories, or --reported")
    if args.output:  # written before the site: a site that fails cannot lose the table
        write_text(args.output, text)
        out.print(f"wrote {args.output}")
    if args.html:
        from serbench.report.site import NO_FIGURES, build, figure_drawers

        if figure_drawers() is None:
            print(f"serbench: {NO_FIGURES}", file=sys.stderr)
        index = build(results, args.html, registry(), args.ci)
        out.print(f"wrote {index} (open it in a browser; it needs no server)")
    if not args.output:
        print(text, end="")


def cmd_compare(args: argparse.Namespace, out: Console) -> None:
    from serbench.report.compare import compare

    runs = compared_runs(args.runs, args.baseline)
    data = compare(runs, args.baseline, args.resamples)
    dimensional = data["comparisons"] and "ccc_mean" in data["comparisons"][0]["metrics"]
    scale = 1 if dimensional else 100  # CCC, r and MAE as they are; proportions in percentage points
    table = Table("A", "B", "metric", "A - B" if dimensional else "A - B (pp)", "95% CI (test inverted)",
                  "p (permutation)", "p (Holm)",
                  title=f"{data['protocol']}: paired, {data['speakers']} speakers, {len(data['jobs'])} (fold, seed) jobs")
    digits = 3 if dimensional else 2
    for row in data["comparisons"]:
        for metric, entry in row["metrics"].items():
            lo, hi = entry["ci95"]
            table.add_row(row["a_id"], row["b_id"], leaderboard.COLUMNS.get(metric, metric),
                          f"{entry['difference'] * scale:+.{digits}f}",
                          f"[{lo * scale:+.{digits}f}, {hi * scale:+.{digits}f}]", f"{entry['p']:.4f}", f"{entry['p_holm']:.4f}")
    out.print(table)
    first = data["comparisons"][0]
    how = (f"exact over all 2^{data['speakers']} = {first['swaps']} speaker swap sets" if first["exact"]
           else f"{first['swaps'] - 1} random speaker swap sets")
    for row in data["comparisons"]:
        if "extraction_precision" in row:
            shown = row["extraction_precision"]
            out.print(f"{row['a_id']} extracted its features in {shown['a']}, {row['b_id']} in {shown['b']}: "
                      "the difference is the extraction precision's (with anything else that differs)")
    out.print(f"test: {data['test']}, {how}; p floor {first['p_floor']:.4g} (no p-value can be smaller with "
              f"{data['speakers']} speakers); statistic: {data['statistic']}")
    target = args.json or default_compare_file(runs, args.baseline)
    write_json(target, data)
    out.print(f"wrote {target}")


def compared_runs(runs: Sequence[str], baseline: str | None) -> list[str]:
    """The runs to compare: ``--baseline`` first when it is not also among ``runs`` (naming it
    once is enough); at least two."""
    runs = list(runs)
    if baseline is not None and not any(Path(r).resolve() == Path(baseline).resolve() for r in runs):
        runs.insert(0, baseline)
    if len(runs) < 2:
        raise SerbenchError("serbench compare: give at least two run directories (or one beside --baseline RUN_DIR)")
    return runs


def default_compare_file(runs: Sequence[str], baseline: str | None) -> Path:
    """Where the comparison goes without ``--json``: beside the runs (the folder the user chose
    with ``run --out``), named by a hash of what was compared, so two comparisons do not
    overwrite each other and nothing lands in the current directory unasked."""
    import hashlib
    import json

    what = json.dumps([[Path(r).resolve().name for r in runs], Path(baseline).resolve().name if baseline else None])
    return Path(runs[0]).resolve().parent / f"compare-{hashlib.sha256(what.encode()).hexdigest()[:10]}.json"


def cmd_plot(args: argparse.Namespace, out: Console) -> None:
    from serbench.report.plots import plot_run

    written = plot_run(args.run_dir, tuple(f.strip() for f in args.format.split(",") if f.strip()))
    out.print(f"wrote {len(written)} figures to {written[0].parent}")


def cmd_score(args: argparse.Namespace, out: Console) -> None:
    from serbench.report.results import Result
    from serbench.report.score import parse_classes, score_files

    classes = parse_classes(args.classes) if args.classes is not None else None
    if args.clean:
        from serbench.report.robustness_report import robustness_table
        from serbench.report.score_robustness import score_robustness

        scored = [score_robustness(path, args.clean, classes) for path in args.files]
        for entry in scored:
            out.print(robustness_table(Result({"robustness": entry}, Path(entry["file"]).parent)))
        if args.json:
            write_json(args.json, scored)
            out.print(f"wrote {args.json}")
        return
    scored = score_files(args.files, classes, args.fairness_threshold)
    for entry in scored:
        what = (f"dimensions {', '.join(entry['dimensions'])}" if entry.get("dimensions")
                else f"{len(entry['classes'])} classes")
        title = f"{entry['file']}  ({len(entry['folds'])} fold x seed jobs, {what})"
        out.print(summary_table(Result({"run_id": entry["file"], **entry}, Path(entry["file"]).parent), title))
        for note in entry["notes"]:
            out.print(f"note: {escape(note)}")
    if args.json:
        write_json(args.json, scored)
        out.print(f"wrote {args.json}")
