"""The docs' reference tables, generated from the code so they cannot drift: the commands
(argparse's usage lines), the options every run takes, the plugins and their versions, the
hooks, the ``meta`` keys a Spec may declare and the batch a downstream receives; and the plugin
author's reference page, docs/plugin-api.md, generated whole from ``serbench.api``'s docstrings.

Each table lives on the page of the reader who needs it (:data:`PAGES`: a user's tables in
docs/running.md, a plugin author's in docs/writing-plugins.md). A maintainer's generator, not
a user command: ``python tools/docs.py`` rewrites each section between
``<!-- generated: NAME -->`` and ``<!-- end: NAME -->`` on those pages; ``python tools/docs.py
--check`` (and tests/test_docs.py) fails when one is stale or out of place. It also writes docs/plugin-api.md, the plugin
author's reference, from the docstrings of :mod:`serbench.api`.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import get_type_hints

from serbench.api.errors import SerbenchError


def _table(headers: list[str], rows: Iterable[list[str]]) -> str:
    cell = lambda text: str(text).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _params(section: str, params) -> list[list[str]]:
    rows = []
    for p in params:
        allowed = ", ".join(map(str, p.choices)) if p.choices else p.range_text
        rows.append([f"`{section}.{p.name}`", p.type.__name__ + (f" of {p.item.__name__}" if p.item else ""),
                     f"`{p.default!r}`", allowed, p.doc])
    return rows


def commands() -> str:
    from serbench.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict))  # the subcommands
    lines = []
    for name, command in sub.choices.items():
        usage = " ".join(command.format_usage().split()).replace(" [-h]", "")
        lines.append(usage.removeprefix("usage: "))
    return "```\n" + "\n".join(lines) + "\n```"


def options() -> str:
    from serbench.report.report_options import REPORT_PARAMS
    from serbench.report.robustness import ROBUSTNESS_PARAMS
    from serbench.run import trainer
    from serbench.run.augment import AUGMENT_PARAMS
    from serbench.run.features import CACHE_PARAMS
    from serbench.run.finetune import UPSTREAM_PARAMS

    rows = (_params("upstream", UPSTREAM_PARAMS) + _params("train", trainer.TRAIN_PARAMS + AUGMENT_PARAMS)
            + _params("cache", CACHE_PARAMS) + _params("robustness", ROBUSTNESS_PARAMS)
            + _params("report", REPORT_PARAMS))
    return _table(["option", "type", "default", "allowed", "what it does"], rows)


def plugins() -> str:
    from serbench.run.plugin_manager import make_plugin_manager
    from serbench.run.registry import Registry

    reg = Registry(make_plugin_manager(autoload=False))  # the built-ins: the same table on every machine
    rows = []
    for kind, specs in reg.specs.items():
        for name in sorted(specs):
            spec = specs[name]
            params = ", ".join(p.name for p in spec.params) or "—"
            rows.append([kind, f"`{name}`", spec.version, spec.plugin, params, spec.summary])
    return _table(["kind", "name", "version", "plugin (entry point)", "parameters", "summary"], rows)


def hooks() -> str:
    from serbench.api import hookspecs
    from serbench.run.registry import HOOKS

    rows = []
    for kind, hook in HOOKS.items():
        doc = " ".join((getattr(hookspecs, hook).__doc__ or "").split())
        rows.append([f"`{hook}`", kind, doc])
    return _table(["hook", "kind", "contract"], rows)


def meta() -> str:
    from serbench.api import meta as declared

    rows = [[kind, f"`{cls.__name__}`", f"`{key}`", f"`{default!r}`", meaning]
            for kind, cls in declared.BY_KIND.items() for key, default, meaning in declared.keys(kind)]
    return _table(["kind", "meta class", "key", "default", "meaning"], rows)


def batch() -> str:
    from serbench.api.batch import Batch

    hints = get_type_hints(Batch, include_extras=True)
    rows = [[f"`{key}`", hint.__metadata__[0].split(": ", 1)[0], hint.__metadata__[0].split(": ", 1)[1]]
            for key, hint in hints.items()]
    return _table(["key", "present", "what it holds"], rows)


SECTIONS: dict[str, Callable[[], str]] = {
    "commands": commands, "options": options, "plugins": plugins, "hooks": hooks, "meta": meta, "batch": batch,
}
# Where each generated section lives, relative to the repository root.
PAGES: dict[str, tuple[str, ...]] = {
    "docs/running.md": ("commands", "options", "plugins"),
    "docs/writing-plugins.md": ("hooks", "meta", "batch"),
}
_SECTION = re.compile(r"(<!-- generated: (\w+) -->\n)(.*?)(<!-- end: \2 -->)", re.S)


def render(text: str, source: str = "README.md", expected: Iterable[str] | None = None) -> str:
    """``text`` with every generated section rebuilt. An unknown section is refused, and so is
    one of ``expected`` (default: all) that ``text`` lacks, or one that ``text`` holds but
    ``expected`` puts on another page."""
    expected = set(SECTIONS if expected is None else expected)
    found = {m.group(2) for m in _SECTION.finditer(text)}
    unknown, missing, elsewhere = found - set(SECTIONS), expected - found, (found & set(SECTIONS)) - expected
    if unknown or missing or elsewhere:
        raise SerbenchError(f"{source}: generated sections {sorted(unknown)} are unknown, {sorted(missing)} missing, "
                            f"{sorted(elsewhere)} belong on another page (known: {', '.join(SECTIONS)})")
    return _SECTION.sub(lambda m: f"{m.group(1)}{SECTIONS[m.group(2)]()}\n{m.group(4)}", text)


def update(root: Path, check: bool = False) -> list[str]:
    """Rewrite the generated sections of every page in :data:`PAGES` under ``root`` (or, with
    ``check``, only say which are stale, as ``page: section``)."""
    from serbench.api.atomic import write_text

    stale: list[str] = []
    for page, names in PAGES.items():
        path = root / page
        if not path.is_file():
            raise SerbenchError(f"{path}: no such page (it holds the generated sections {', '.join(names)})")
        text = path.read_text(encoding="utf-8")
        fresh = render(text, str(path), names)
        changed = [m.group(2) for m, n in zip(_SECTION.finditer(text), _SECTION.finditer(fresh)) if m.group(0) != n.group(0)]
        stale += [f"{page}: {name}" for name in changed]
        if changed and not check:
            write_text(path, fresh)
    return stale


# The plugin author's page: the contract of each kind, in the order a plugin meets it.
CONTRACTS = (
    ("Registering", ("serbench.api.specs:Spec", "serbench.api.specs:Param")),
    ("Upstreams", ("serbench.api.upstream:Upstream", "serbench.api.upstream:UpstreamOutput")),
    ("Downstreams", ("serbench.api.downstream:Downstream", "serbench.api.downstream:DownstreamContext",
                     "serbench.api.batch:Batch")),
    ("Multi-stage methods", ("serbench.api.stages:Stage", "serbench.api.stages:Optimiser",
                             "serbench.api.stages:Schedule", "serbench.api.stages:StageInput")),
    ("Poolings and losses", ("serbench.api.pooling:Pooling", "serbench.api.loss:Loss")),
    ("Protocols", ("serbench.api.protocol:Protocol", "serbench.api.protocol:Fold", "serbench.api.protocol:Utterance")),
    ("Executors", ("serbench.api.executor:Executor", "serbench.api.work:WorkUnit", "serbench.api.work:Job",
                   "serbench.api.work:Shard")),
)
PAGE = Path(__file__).resolve().parents[1] / "docs" / "plugin-api.md"


def _doc(obj) -> str:
    import inspect

    return inspect.cleandoc(obj.__doc__ or "").strip()


def _members(cls) -> list[str]:
    """The public methods a contract class defines itself, with their signatures and docs."""
    import inspect

    lines = []
    for name, member in vars(cls).items():
        if name.startswith("_") and name != "__call__" or not callable(member) or isinstance(member, type):
            continue
        try:
            signature = str(inspect.signature(member)).replace("'", "")
        except (TypeError, ValueError):
            continue
        doc = " ".join(_doc(member).split())
        lines.append(f"- `{name}{signature}`" + (f": {doc}" if doc else ""))
    return lines


def plugin_api() -> str:
    """docs/plugin-api.md: every contract class of serbench.api with its docstring, then the
    hooks, the meta keys, the batch keys and the modules a plugin may import."""
    import pkgutil
    from importlib import import_module

    import serbench.api as api

    out = ["# Writing plugins: the serbench.api reference", "",
           "<!-- generated by tools/docs.py from serbench.api's docstrings; edit those, then run it -->", "",
           _doc(api), ""]
    for title, names in CONTRACTS:
        out += [f"## {title}", ""]
        for dotted in names:
            module, _, name = dotted.partition(":")
            cls = getattr(import_module(module), name)
            out += [f"### `{name}`", "", f"`from {module} import {name}`", "", _doc(cls), ""]
            members = _members(cls)
            out += members + ([""] if members else [])
    out += ["## Hooks", "", hooks(), "", "## Meta keys", "", meta(), "", "## The batch", "", batch(), "",
            "## Modules of serbench.api", "", _table(["module", "what it is for"], [
                [f"`serbench.api.{m.name}`", " ".join(_doc(import_module(f"serbench.api.{m.name}")).split("\n\n")[0].split())]
                for m in pkgutil.iter_modules(api.__path__)])]
    return "\n".join(out).rstrip() + "\n"


def update_page(page: Path = PAGE, check: bool = False) -> bool:
    """Rewrite docs/plugin-api.md (or, with ``check``, only say whether it is stale)."""
    fresh = plugin_api()
    stale = not page.is_file() or page.read_text(encoding="utf-8") != fresh
    if stale and not check:
        from serbench.api.atomic import write_text

        page.parent.mkdir(parents=True, exist_ok=True)
        write_text(page, fresh)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rebuild the docs' generated tables (commands, options, plugins, hooks).")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the checkout whose docs/ pages are rebuilt (default: this repository)")
    parser.add_argument("--page", type=Path, help="the plugin API page (default: ROOT/docs/plugin-api.md)")
    parser.add_argument("--check", action="store_true", help="only say which sections are stale (exit 1 if any)")
    args = parser.parse_args(argv)
    try:
        stale = update(args.root, check=args.check)
        page = args.page or args.root / "docs" / "plugin-api.md"
        if update_page(page, check=args.check):
            stale.append(str(page))
    except SerbenchError as exc:
        print(f"docs: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print(f"stale: {', '.join(stale)} (run python tools/docs.py)" if stale else "docs tables are current")
        return 1 if stale else 0
    print(f"rebuilt: {', '.join(stale)}" if stale else "docs tables were current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
