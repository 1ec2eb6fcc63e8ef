"""Commands over finished results: leaderboard, fuse, compare, plot, score."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from serbench.api.atomic import write_json, write_text
from serbench.api.errors import SerbenchError
from serbench.report import leaderboard
from serbench.run.registry import registry

if TYPE_CHECKING:
    pass
from serbench.cli.tables import summary_table


def cmd_fuse(args: argparse.Namespace, out: Console) -> None:
    from serbench.report.fusion import fuse

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
        from serbench.report.site import check_inputs

        check_inputs(results)
    for option, path, render in (("--latex", args.latex, leaderboard.latex), ("--csv", args.csv, None)):
        if path:
            if not results:
                raise SerbenchError(f"serbench leaderboard {option}: give result files or run directories")
            write_text(path, render(results, args.ci) if render else leaderboard.csv_table(results))
            out.print(f"wrote {path}")
    if args.html:
        from serbench.report.site import build

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


def cmd_compare(args: argparse.Namespace, out: Console) -> None:
    from serbench.report.compare import compare

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
        title = f"{entry['file']}  ({len(entry['folds'])} fold x seed jobs, {len(entry['classes'])} classes)"
        out.print(summary_table(Result({"run_id": entry["file"], **entry}, Path(entry["file"]).parent), title))
        for note in entry["notes"]:
            out.print(f"note: {escape(note)}")
    if args.json:
        write_json(args.json, scored)
        out.print(f"wrote {args.json}")
