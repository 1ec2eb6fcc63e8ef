"""The layers of DESIGN.md, checked on the import graph of the source tree (read with ``ast``,
so a module is covered the day it is added, with no list here to keep up to date).

``cli -> run -> report -> api``: a layer imports only the layers below it (``report`` never
imports ``run``); nothing outside ``cli`` imports ``cli``; a plugin (built in, or an example
third-party package) imports nothing of serbench outside ``serbench.api``; no import cycle.
An import inside a function counts as much as one at the top: it runs, only later; one under
``if TYPE_CHECKING:`` does not (it never runs).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("api", "report", "run", "cli")  # bottom to top
OURS = ("serbench", "serbench_plugins")
# Known, named debts (each one a seam still to open), so that every other import stays checked:
KNOWN_OUTSIDE_API: dict[tuple[str, str], str] = {}


def _module_name(path: Path, base: Path, prefix: str) -> str:
    parts = [prefix, *path.relative_to(base).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the tree by dotted name: serbench, serbench_plugins and examples/."""
    found = {}
    for package in OURS:
        for path in sorted((root / package).rglob("*.py")):
            found[_module_name(path, root / package, package)] = path
    for path in sorted((root / "examples").rglob("*.py")):
        if "build" not in path.parts:
            found[_module_name(path, root / "examples", "examples")] = path
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node, except the bodies of ``if TYPE_CHECKING:`` (imports for type hints only)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            test = child.test if isinstance(child, ast.If) else None
            if test is not None and ("TYPE_CHECKING" in {getattr(test, "id", None), getattr(test, "attr", None)}):
                todo += child.orelse
            else:
                todo.append(child)


def imports_of(source: str, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """The serbench modules a module imports: ``from serbench.api import blocks`` is the module
    ``serbench.api.blocks``; ``from serbench.api.blocks import X`` is ``serbench.api.blocks``;
    relative imports are resolved against the module's own package."""
    out = set()
    for node in _runtime_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in modules else base)
    return {m for m in out if m.split(".")[0] in OURS}


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    found = sources(root)
    return {name: imports_of(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", set(found))
            for name, path in found.items()}


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "serbench" and len(parts) > 1 and parts[1] in LAYERS else None


def cycle(edges: dict[str, set[str]]) -> list[str]:
    """One import cycle (``[a, b, a]``), or [] when there is none (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if dep not in edges or dep == node:
                continue
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for module in sorted(edges):
        if module not in state and (found := visit(module)):
            return found
    return []


def upward(edges: dict[str, set[str]]) -> list[str]:
    """Imports that go up the layers (or from a layer to the package root or to a plugin)."""
    wrong = []
    for module, deps in sorted(edges.items()):
        own = layer(module)
        if own is None:
            continue
        for dep in sorted(deps):
            theirs = layer(dep)
            if dep.split(".")[0] == "serbench_plugins":
                wrong.append(f"{module} imports the plugin {dep}")
            elif theirs is None:
                wrong.append(f"{module} imports {dep} (the package root, above every layer)")
            elif LAYERS.index(theirs) > LAYERS.index(own):
                wrong.append(f"{module} ({own}) imports {dep} ({theirs})")
    return wrong


def into_cli(edges: dict[str, set[str]]) -> list[str]:
    """Imports of the cli from outside it (``python -m serbench``'s ``__main__`` starts it)."""
    return [f"{module} imports {dep}" for module, deps in sorted(edges.items())
            if layer(module) != "cli" and module != "serbench.__main__" for dep in sorted(deps) if layer(dep) == "cli"]


def outside_api(edges: dict[str, set[str]]) -> list[str]:
    """What plugins (built in and examples) import of serbench outside serbench.api."""
    return [f"{module} imports {dep}" for module, deps in sorted(edges.items())
            if module.split(".")[0] in ("serbench_plugins", "examples")
            for dep in sorted(deps) if dep.split(".")[0] == "serbench" and layer(dep) != "api"
            and (module, dep) not in KNOWN_OUTSIDE_API]


GRAPH = graph()


def test_the_tree_is_read_whole():
    """Every layer and every built-in plugin family is found, with its edges (else the tests
    below would pass on an empty graph)."""
    assert {layer(m) for m in GRAPH} >= set(LAYERS)
    assert {"serbench_plugins.superb.register", "serbench_plugins.upstreams.fbank", "serbench.cli.main"} <= set(GRAPH)
    assert any(m.startswith("examples.") for m in GRAPH)
    assert "serbench.api.errors" in GRAPH["serbench.report.results"]
    assert "serbench.api.stages" in GRAPH["serbench_plugins.wap_la.model"]  # a function-level import counts too


def test_no_import_cycle():
    assert cycle(GRAPH) == []


def test_layers_import_downwards_only():
    wrong = upward(GRAPH)
    assert not wrong, "\n".join(wrong)


def test_nothing_outside_cli_imports_cli():
    wrong = into_cli(GRAPH)
    assert not wrong, "\n".join(wrong)


def test_plugins_import_only_the_api():
    wrong = outside_api(GRAPH)
    assert not wrong, "\n".join(wrong)


def test_each_check_fails_on_a_tree_that_breaks_it(tmp_path):
    """A small tree written here, with one of each fault, is caught by each check, with the
    culprit named (the independent reference: the faults planted by hand)."""
    files = {
        "serbench/__init__.py": "",
        "serbench/api/__init__.py": "",
        "serbench/api/a.py": "from serbench.report import r\n",  # upward: api -> report
        "serbench/report/__init__.py": "",
        "serbench/report/r.py": "def f():\n    from serbench.run import x\n",  # report -> run, inside a function
        "serbench/run/__init__.py": "",
        "serbench/run/x.py": "from . import y\n",  # a cycle x -> y -> x, one side relative
        "serbench/run/z.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import serbench.cli.main\n",
        "serbench/run/y.py": "import serbench.run.x\nimport serbench.cli.main\n",  # run -> cli
        "serbench/cli/__init__.py": "",
        "serbench/cli/main.py": "",
        "serbench_plugins/__init__.py": "",
        "serbench_plugins/p.py": "from serbench.run.x import thing\nfrom serbench.api import a\n",
        "examples/e/e.py": "import serbench\n",  # the package root is not the api
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    edges = graph(tmp_path)
    assert cycle(edges) == ["serbench.run.x", "serbench.run.y", "serbench.run.x"]
    assert upward(edges) == ["serbench.api.a (api) imports serbench.report.r (report)",
                             "serbench.report.r (report) imports serbench.run.x (run)",
                             "serbench.run.y (run) imports serbench.cli.main (cli)"]
    assert into_cli(edges) == ["serbench.run.y imports serbench.cli.main"]
    assert outside_api(edges) == ["examples.e.e imports serbench", "serbench_plugins.p imports serbench.run.x"]
