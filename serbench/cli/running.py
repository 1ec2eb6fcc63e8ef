"""Commands that run jobs: run, job, finish, bench, status."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from serbench.api.atomic import write_text
from serbench.api.errors import SerbenchError
from serbench.api.progress import Reporter
from serbench.api.user_config import env_var
from serbench.cli.tables import run_notes, summary_table
from serbench.report.robustness_report import robustness_table
from serbench.report.rundir import RunDir
from serbench.run.registry import registry
from serbench.run.request import RunRequest


def request_from_args(args: argparse.Namespace) -> RunRequest:
    """``serbench run``'s parsed options as a request (the one place the CLI's names meet it)."""
    return RunRequest(args.upstream, args.downstream, args.pooling, args.loss, args.protocol, args.data,
                      tuple(args.seeds), args.device, tuple(args.overrides), recipe=args.recipe,
                      executor=args.executor, perturbations=tuple(args.perturb), task=args.task)


def cmd_run(args: argparse.Namespace, out: Console) -> None:
    from serbench.run.execute import execute
    from serbench.run.plan import plan

    the_plan = plan(request_from_args(args))
    if args.prepare:
        from serbench.run.execute import open_run, prepare, runs_folder

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
    if "robustness" in result.data:
        out.print(robustness_table(result))
    for note in run_notes(result):
        out.print(f"note: {escape(note)}")
    out.print(f"result: {result.dir.result}")


def cmd_job(args: argparse.Namespace, out: Console) -> None:

    if (args.fold is None) != (args.seed is None):
        raise SerbenchError("serbench job: give both --fold and --seed, or neither (every job this worker can claim)")
    if args.shard and args.fold is not None:
        raise SerbenchError("serbench job: --shard extracts features; give it without --fold/--seed")
    threads = os.environ.get("SERBENCH_TORCH_THREADS")  # set by an executor for its workers
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    from serbench.api.work import Job, Shard
    from serbench.run.execute import execute, work_unit
    from serbench.run.plan import load_plan

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


def cmd_finish(args: argparse.Namespace, out: Console) -> None:
    from serbench.run.execute import execute
    from serbench.run.plan import load_plan

    run_dir = Path(args.run_dir)
    result = execute(load_plan(run_dir, "cpu"), run_dir.parent, Reporter(quiet=True), only=[])
    out.print(summary_table(result))
    if "robustness" in result.data:
        out.print(robustness_table(result))
    for note in run_notes(result):
        out.print(f"note: {escape(note)}")
    out.print(f"result: {result.dir.result}")


def cmd_bench(args: argparse.Namespace, out: Console) -> None:
    from serbench.report import claims
    from serbench.run import cache, suites
    from serbench.run.execute import execute

    bad = [o for o in args.overrides if not o.startswith("executor.")]
    if bad:
        raise SerbenchError(f"-o {bad[0]}: serbench bench takes executor options only; cells set their own in the suite")
    suite = suites.load(args.suite)
    plans = suites.plans(suite, args.executor, tuple(args.overrides), corpus_optional=args.dry_run)  # every cell checked
    if args.dry_run:
        planned = suites.dry_run(suite, plans, Path(args.out))
        table = Table("line", "cell", "jobs", "features", "run id")
        for row in planned.rows:
            table.add_row(*row)
        out.print(table)
        unknown = f" + the jobs of {planned.jobs_unknown} cells whose folds need the corpus" if planned.jobs_unknown else ""
        here = len(plans) - sum(planned.missing.values())
        estimate = (f"about {cache.human_bytes(planned.cache_bytes)} in all, each (encoder, layers, corpus) counted once"
                    + (f" ({here} cells whose corpus is here)" if planned.missing else "")) if here else "unknown"
        out.print(f"{len(plans)} cells, {planned.jobs} jobs (folds x seeds){unknown}; feature cache: {estimate}")
        for key, cells in planned.missing.items():
            out.print(f"unknown until the {key} corpus is here ({cells} cells): their cache estimate and run ids; "
                      f"serbench config set data.{key} PATH (or {env_var(key)})")
        return
    results = []
    for k, (cell, the_plan) in enumerate(zip(suite.cells, plans), start=1):
        run_dir = Path(args.out) / the_plan.run_id
        before = RunDir(run_dir).jobs_list.exists() and all(state == "done" for *_, state, _ in claims.status(run_dir))
        result = execute(the_plan, args.out, Reporter(quiet=True))
        results.append(result)
        main = result.data.get("main_metric", "ua")
        out.print(f"[{k}/{len(plans)}] {cell.label}: {main.upper()} {result.summary[main]['mean'] * 100:.2f}"
                  + (" (done before: resumed, nothing computed)" if before else "") + f"  {result.run_dir}")
    target = Path(args.leaderboard or Path(args.out) / "leaderboards" / f"{suite.name}.md")
    write_text(target, suites.leaderboard(suite, results))
    out.print(f"wrote {target}")
    if args.html:
        from serbench.report.site import build

        out.print(f"wrote {build(results, args.html, registry())} (open it in a browser; it needs no server)")


def cmd_status(args: argparse.Namespace, out: Console) -> None:
    from collections import Counter

    from serbench.report import claims

    rows = claims.status(Path(args.run_dir))
    table = Table("fold", "seed", "state", "claimed by / error")
    for fold, seed, state, who in rows:
        table.add_row(fold, str(seed), state, escape(who))
    out.print(table)
    counts = Counter(state for _, _, state, _ in rows)
    out.print(", ".join(f"{counts[s]} {s}" for s in ("done", "running", "stale", "failed", "pending") if counts[s]))
