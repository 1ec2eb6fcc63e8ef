#!/usr/bin/env python3
"""Rewrite references to serbench's old flat modules into the relayout's paths (issue 24).

    python rewrite_imports.py FILE...        rewrite in place; prints the files it changed
    python rewrite_imports.py --check FILE... exit 1 (and list them) when a file would change
    --stage1: for a tree with the layers' stage 1 only (no serbench.api.devices/stages/batch/work
    yet): leave the names that moved in stage 2 where they are

What it rewrites, in any text file (code, tests, docs, TOML entry points, shell lines):
- ``from serbench import plan, corpus as C`` -> ``from serbench.run import plan`` +
  ``from serbench.api import protocol as C`` (a name whose module moved; its alias kept; a
  module merged into another is imported under its old name); ``from serbench import Spec,
  hookimpl`` (the contract names) -> ``from serbench.api import ...``; the user API names
  (available, create, Result, load_result, compare, SerbenchError, __version__) stay;
- every dotted reference to an old module (``import serbench.plan as p``, ``from
  serbench_plugins.register.fbank import x``, ``"serbench.plan.resolve_device"`` in
  monkeypatch/mock targets, ``"serbench_plugins.poolings.segmental:SegmentalPooling"``
  factories, entry points, ``python -m serbench...``, prose) -> its new dotted path;
- source paths in prose (``serbench/plan.py``, ``plugins/register/fbank.py``) -> new paths;
- ``from serbench.cli import run_notes`` -> the command-group module that now defines it
  (``serbench.cli.tables``); other names of ``serbench.cli`` -> ``serbench.cli.main``;
- names that moved between modules (the plugin contract went to ``serbench.api``):
  ``from serbench.run.plan import plan, worker_device`` -> ``... import plan`` +
  ``from serbench.api.devices import worker_device`` (``NAME_MOVES``);
- ``serbench.run(`` (the Python API; ``serbench.run`` is now the run layer) ->
  ``serbench.run_benchmark(``.

Exact and idempotent: names match on word boundaries (``serbench.plan`` never inside
``serbench.run.plan``; ``serbench.metrics/1``, a result's identifier, and the call
``serbench.compare(...)`` are left alone), and no new path is an old one, so a second pass
changes nothing. Python files it changed are then
import-sorted with ``ruff check --fix --select I`` when ruff is installed (``--no-isort``
skips it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

MAP: dict[str, str] = {
    'serbench.atomic': 'serbench.api.atomic',
    'serbench.attention': 'serbench.api.blocks',
    'serbench.audio': 'serbench.api.audio',
    'serbench.batching': 'serbench.run.batching',
    'serbench.blocks': 'serbench.api.blocks',
    'serbench.cache': 'serbench.run.cache',
    'serbench.claims': 'serbench.report.claims',
    'serbench.cli': 'serbench.cli.main',
    'serbench.compare': 'serbench.report.compare',
    'serbench.conformance': 'serbench.run.conformance',
    'serbench.corpus': 'serbench.api.protocol',
    'serbench.datacheck': 'serbench.run.datacheck',
    'serbench.docs': 'tools.docs',
    'serbench.downstream': 'serbench.api.downstream',
    'serbench.errors': 'serbench.api.errors',
    'serbench.execute': 'serbench.run.execute',
    'serbench.features': 'serbench.run.features',
    'serbench.finetune': 'serbench.run.finetune',
    'serbench.folds': 'serbench.api.folds',
    'serbench.fusion': 'serbench.report.fusion',
    'serbench.heap': 'serbench.run.heap',
    'serbench.hookspecs': 'serbench.api.hookspecs',
    'serbench.iemocap_format': 'serbench_plugins.protocols.iemocap_format',
    'serbench.interrupt': 'serbench.run.interrupt',
    'serbench.job': 'serbench.run.job',
    'serbench.kmeans': 'serbench.api.kmeans',
    'serbench.leaderboard': 'serbench.report.leaderboard',
    'serbench.locks': 'serbench.report.locks',
    'serbench.meta': 'serbench.api.meta',
    'serbench.metrics': 'serbench.report.metrics',
    'serbench.needs': 'serbench.run.needs',
    'serbench.overrides': 'serbench.run.overrides',
    'serbench.plan': 'serbench.run.plan',
    'serbench.plots': 'serbench.report.plots',
    'serbench.plugin_check': 'serbench.cli.check_plugin',
    'serbench.plugin_manager': 'serbench.run.plugin_manager',
    'serbench.progress': 'serbench.api.progress',
    'serbench.ranking': 'serbench.report.ranking',
    'serbench.recipes': 'serbench.api.recipes',
    'serbench.registry': 'serbench.run.registry',
    'serbench.result_fields': 'serbench.report.result_fields',
    'serbench.results': 'serbench.report.results',
    'serbench.safe_paths': 'serbench.report.safe_paths',
    'serbench.score': 'serbench.report.score',
    'serbench.site': 'serbench.report.site',
    'serbench.specs': 'serbench.api.specs',
    'serbench.spreadsheet': 'serbench.report.spreadsheet',
    'serbench.stage_recipes': 'serbench.api.stage_recipes',
    'serbench.stages': 'serbench.run.stages',
    'serbench.stats': 'serbench.report.stats',
    'serbench.suites': 'serbench.run.suites',
    'serbench.textfiles': 'serbench.api.textfiles',
    'serbench.trainer': 'serbench.run.trainer',
    'serbench.upstream': 'serbench.api.upstream',
    'serbench.user_config': 'serbench.api.user_config',
    'serbench.vad': 'serbench.run.vad',
    'serbench_plugins.methods.conditioning': 'serbench_plugins.wavlm_cond.conditioning',
    'serbench_plugins.methods.gmp_atl': 'serbench_plugins.gmp_atl.model',
    'serbench_plugins.methods.sap_gap': 'serbench_plugins.sap_gap.model',
    'serbench_plugins.methods.superb': 'serbench_plugins.superb.model',
    'serbench_plugins.methods.text_embedding': 'serbench_plugins.wavlm_cond.text_embedding',
    'serbench_plugins.methods.wap_la': 'serbench_plugins.wap_la.model',
    'serbench_plugins.methods.wavlm_cond': 'serbench_plugins.wavlm_cond.model',
    'serbench_plugins.poolings.segmental': 'serbench_plugins.sap_gap.segmental',
    'serbench_plugins.poolings.statistical_attentive': 'serbench_plugins.wap_la.statistical_attentive',
    'serbench_plugins.register.am_softmax': 'serbench_plugins.losses.register_am_softmax',
    'serbench_plugins.register.cluster_executors': 'serbench_plugins.executors.register_cluster',
    'serbench_plugins.register.fbank': 'serbench_plugins.upstreams.register_fbank',
    'serbench_plugins.register.gmp_atl': 'serbench_plugins.gmp_atl.register',
    'serbench_plugins.register.local_executor': 'serbench_plugins.executors.register_local',
    'serbench_plugins.register.losses': 'serbench_plugins.losses.register_classification',
    'serbench_plugins.register.multitask_loss': 'serbench_plugins.losses.register_multitask',
    'serbench_plugins.register.poolings': 'serbench_plugins.poolings.register_mean',
    'serbench_plugins.register.s3prl': 'serbench_plugins.upstreams.register_s3prl',
    'serbench_plugins.register.sap_gap': 'serbench_plugins.sap_gap.register',
    'serbench_plugins.register.statistics_pooling': 'serbench_plugins.poolings.register_statistics',
    'serbench_plugins.register.superb': 'serbench_plugins.superb.register',
    'serbench_plugins.register.transformers': 'serbench_plugins.upstreams.register_transformers',
    'serbench_plugins.register.wap_la': 'serbench_plugins.wap_la.register',
    'serbench_plugins.register.wavlm_cond': 'serbench_plugins.wavlm_cond.register',
}

# ``from serbench import X`` for these names now reads ``from serbench.api import X``
API_NAMES = {"hookimpl", "Spec", "Param", "UpstreamMeta", "DownstreamMeta", "PoolingMeta", "LossMeta",
             "ProtocolMeta", "ExecutorMeta", "SerbenchError"}
FACADE_RENAMES = {"run": "run_benchmark"}
# modules of the new tree under an old module's name (``serbench.cli`` became a package):
# ``serbench.cli.main`` must not become ``serbench.cli.main.main``
NEW_SUBMODULES = {old: {new[len(old) + 1:].split(".")[0] for new in MAP.values() if new.startswith(old + ".")}
                  for old in MAP}
NEW_SUBMODULES["serbench.cli"] |= {"main", "check_plugin", "running", "plugins", "results", "data", "tables"}
# what today's cli.py defines went to the command-group modules: ``from serbench.cli import X``
CLI_NAMES = {**dict.fromkeys(("summary_table", "run_notes"), "serbench.cli.tables"),
             **dict.fromkeys(("cmd_run", "cmd_job", "cmd_finish", "cmd_bench", "cmd_status"), "serbench.cli.running"),
             **dict.fromkeys(("cmd_list", "_print_method", "cmd_plugins", "cmd_check_plugin"), "serbench.cli.plugins"),
             **dict.fromkeys(("cmd_fuse", "cmd_leaderboard", "cmd_compare", "cmd_plot", "cmd_score"), "serbench.cli.results"),
             **dict.fromkeys(("cmd_splits", "cmd_data", "cmd_cache", "cmd_config"), "serbench.cli.data")}

# names that moved between modules of the new tree (the contract went to serbench.api):
# ``from serbench.run.plan import plan, worker_device`` -> two imports
NAME_MOVES: dict[tuple[str, str], str] = {
    **{("serbench.run.plan", n): "serbench.api.devices" for n in ("resolve_device", "worker_device")},
    **{("serbench.run.stages", n): "serbench.api.stages" for n in ("Stage", "StageInput", "ALLOWED_SPLITS", "LABEL_KEYS")},
    **{("serbench.run.batching", n): "serbench.api.batch" for n in ("Batch", "ATTRIBUTES", "frame_mask", "bucketed")},
    ("serbench.report.results", "Job"): "serbench.api.work",
    ("serbench.run.execute", "Shard"): "serbench.api.work",
}

_DOTTED = re.compile(r"(?<![\w.])(" + "|".join(re.escape(o) for o in sorted(MAP, key=len, reverse=True)) + r")(?![\w/(-])")


def _path_of(module: str, package: bool = False) -> str:
    parts = module.split(".")
    if parts[0] == "serbench_plugins" and not package:
        parts[0] = "plugins"  # the old tree's folder
    return "/".join(parts) + ".py"


_OLD_PATHS = {_path_of(o): _path_of(n, package=True) for o, n in MAP.items()}
_PATHS = re.compile(r"(?<![\w/.-])(" + "|".join(re.escape(p) for p in sorted(_OLD_PATHS, key=len, reverse=True)) + r")(?![\w])")
_FROM = re.compile(r"^(?P<indent>[ \t]*)from[ \t]+(?P<pkg>serbench(?:_plugins)?(?:\.\w+)*)[ \t]+import[ \t]+"
                   r"(?P<names>\([^)]*\)|[^\n;#\\]+?)(?P<tail>[ \t]*(?:#[^\n]*)?)$", re.M)
# ``from serbench import hookimpl, Spec`` inside a line (a plugin's source in a test's string)
_INLINE_API = re.compile(r"(?<![\w.])from serbench import (\w+(?:, ?\w+)*)")
_API_CALL = re.compile(r"(?<![\w.])serbench\.run\(")


def _dotted(match: re.Match) -> str:
    old = match.group(1)
    rest = match.string[match.end():]
    sub = re.match(r"\.(\w+)", rest)
    if sub and sub.group(1) in NEW_SUBMODULES.get(old, ()):
        return old  # already the new path
    return MAP[old]


def _names(text: str) -> list[tuple[str, str | None]]:
    text = re.sub(r"#[^\n]*", "", text.strip().strip("()"))
    out = []
    for item in (p.strip() for p in text.replace("\n", " ").split(",")):
        if item:
            name, _, alias = item.partition(" as ")
            out.append((name.strip(), alias.strip() or None))
    return out


def _from_import(match: re.Match) -> str:
    pkg, indent = match.group("pkg"), match.group("indent")
    names = _names(match.group("names"))
    moved = [(n, a) for n, a in names if f"{pkg}.{n}" in MAP or (pkg == "serbench" and (n in API_NAMES or n in FACADE_RENAMES))
             or (pkg == "serbench.cli" and n in CLI_NAMES)]
    if not moved:
        return match.group(0)
    targets: dict[str, list[str]] = {}
    for name, alias in names:
        full = f"{pkg}.{name}"
        if full in MAP:
            parent, _, leaf = MAP[full].rpartition(".")
            bound = alias or name
            targets.setdefault(parent, []).append(leaf if bound == leaf else f"{leaf} as {bound}")
        elif pkg == "serbench" and name in API_NAMES:
            targets.setdefault("serbench.api", []).append(name if alias is None else f"{name} as {alias}")
        elif pkg == "serbench.cli" and name in CLI_NAMES:
            targets.setdefault(CLI_NAMES[name], []).append(name if alias is None else f"{name} as {alias}")
        elif pkg == "serbench" and name in FACADE_RENAMES:
            targets.setdefault("serbench", []).append(f"{FACADE_RENAMES[name]} as {alias or name}")
        else:
            targets.setdefault(pkg, []).append(name if alias is None else f"{name} as {alias}")
    lines = [f"{indent}from {parent} import {', '.join(items)}" for parent, items in targets.items()]
    lines[0] += match.group("tail")
    return "\n".join(lines)


def _moved_names(match: re.Match) -> str:
    pkg, indent = match.group("pkg"), match.group("indent")
    names = _names(match.group("names"))
    if not any((pkg, n) in NAME_MOVES for n, _ in names):
        return match.group(0)
    targets: dict[str, list[str]] = {}
    for name, alias in names:
        targets.setdefault(NAME_MOVES.get((pkg, name), pkg), []).append(name if alias is None else f"{name} as {alias}")
    lines = [f"{indent}from {parent} import {', '.join(items)}" for parent, items in targets.items()]
    lines[0] += match.group("tail")
    return "\n".join(lines)


def rewrite(text: str, name_moves: bool = True) -> str:
    """The text with every reference to an old module rewritten (a fixed point: rewrite(rewrite(t)) == rewrite(t)).
    ``name_moves`` False: leave the names that moved in stage 2 (for a tree at stage 1)."""
    text = _FROM.sub(_from_import, text)
    text = _INLINE_API.sub(lambda m: f"from serbench.api import {m.group(1)}"
                           if all(n.strip() in API_NAMES for n in m.group(1).split(",")) else m.group(0), text)
    text = _DOTTED.sub(_dotted, text)
    text = _PATHS.sub(lambda m: _OLD_PATHS[m.group(1)], text)
    if name_moves:
        text = _FROM.sub(_moved_names, text)
    return _API_CALL.sub("serbench.run_benchmark(", text)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    isort = "--no-isort" not in argv
    name_moves = "--stage1" not in argv
    files = [Path(a) for a in argv if not a.startswith("--")]
    changed = []
    for path in files:
        try:
            old = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue
        new = rewrite(old, name_moves)
        if new != old:
            changed.append(path)
            if not check:
                path.write_text(new, encoding="utf-8")
    for path in changed:
        print(path)
    if check:
        return 1 if changed else 0
    py = [str(p) for p in changed if p.suffix == ".py"]
    if isort and py and shutil.which("ruff"):
        subprocess.run(["ruff", "check", "--quiet", "--fix", "--select", "I", *py], check=False)
    elif isort and py:
        subprocess.run([sys.executable, "-m", "ruff", "check", "--quiet", "--fix", "--select", "I", *py], check=False,
                       stderr=subprocess.DEVNULL)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
