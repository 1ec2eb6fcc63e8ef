"""Commands about plugins: list, plugins, check-plugin."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from serbench.api import recipes, stage_recipes
from serbench.api.meta import DownstreamMeta
from serbench.api.specs import KINDS
from serbench.report import leaderboard
from serbench.run.registry import check_kind, registry


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
        if check_kind(args.kind) == "upstream":
            from serbench.run.finetune import UPSTREAM_PARAMS

            out.print("every upstream also takes: " + ", ".join(
                f"upstream.{p.name}" + (f" ({'|'.join(map(str, p.choices))})" if p.choices else "") for p in UPSTREAM_PARAMS)
                + " (docs/running.md); upstream.precision=bf16 only where the upstream declares it (Upstream.precisions)")
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


def cmd_check_plugin(args, out: Console) -> int:
    from serbench.cli.check_plugin import check_plugin

    checks = check_plugin(args.kind, args.name, args.overrides, args.data)
    table = Table("check", "result", "detail")
    for check in checks:
        table.add_row(escape(check.name), "[green]pass[/green]" if check.passed else "[red]FAIL[/red]", escape(check.detail))
    out.print(table)
    failed = [c for c in checks if not c.passed]
    out.print(f"{args.kind} {args.name}: " + (f"{len(failed)} of {len(checks)} checks failed" if failed else f"all {len(checks)} checks pass"))
    return 1 if failed else 0
