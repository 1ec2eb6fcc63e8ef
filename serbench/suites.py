"""Benchmark suites: a small TOML file in ``benchmarks/`` names a matrix of runs.

    name = "smoke"
    version = "1"
    seeds = [0, 1, 2]                      # default for every matrix entry

    [[matrix]]
    protocols = ["synthetic"]
    upstreams = ["fbank"]
    downstreams = ["superb", "sap_gap"]
    overrides = ["protocol.per_class=4"]   # optional: pooling, loss, recipe, seeds too

Each ``[[matrix]]`` entry expands to protocols x upstreams x downstreams cells; every cell is
checked (names, overrides, duplicates) before any work, and an error names the file and the
line of the entry at fault. ``serbench bench`` runs the cells one after the other (each
resumes), then writes the suite's leaderboard, one table per protocol.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from serbench.corpus import SAFE_NAME
from serbench.errors import SerbenchError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ENTRY_KEYS = {"protocols", "upstreams", "downstreams", "pooling", "loss", "recipe", "overrides", "seeds"}


@dataclass(frozen=True)
class Cell:
    """One run of a suite; ``line`` is where its ``[[matrix]]`` entry starts."""

    protocol: str
    upstream: str
    downstream: str
    pooling: str | None
    loss: str | None
    recipe: str | None
    overrides: tuple[str, ...]
    seeds: tuple[int, ...]
    line: int

    @property
    def label(self) -> str:
        extra = [f"pooling {self.pooling}"] if self.pooling else []
        extra += [f"loss {self.loss}"] if self.loss else []
        extra += list(self.overrides)
        return f"{self.protocol} / {self.upstream} / {self.downstream}" + (f" ({', '.join(extra)})" if extra else "")


@dataclass(frozen=True)
class Suite:
    name: str
    version: str
    path: Path
    cells: tuple[Cell, ...]


def _names(entry: dict, key: str, where: str) -> list[str]:
    value = entry.get(key)
    if isinstance(value, str):
        value = [value]
    if not value or not all(isinstance(v, str) for v in value):
        raise SerbenchError(f"{where}: {key} must be a non-empty list of names")
    return value


def load(path: str | Path) -> Suite:
    """Read and expand a suite file; SerbenchError names the file and line at fault."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SerbenchError(f"{path}: cannot read the suite ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SerbenchError(f"{path}: not valid TOML ({exc})") from None
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if re.match(r"\s*\[\[\s*matrix\s*\]\]", line)]
    for key in ("name", "version"):
        if not isinstance(data.get(key), str):
            raise SerbenchError(f"{path}: the suite needs a string {key} (name = \"smoke\", version = \"1\")")
    if not SAFE_NAME.fullmatch(data["name"]):  # it names the leaderboard file: leaderboards/<name>.md
        raise SerbenchError(f"{path}: name {data['name']!r} cannot name a file (letters, digits, '.', '_', '-')")
    entries = data.get("matrix")
    if not isinstance(entries, list) or not entries:
        raise SerbenchError(f"{path}: no [[matrix]] entry")
    default_seeds = data.get("seeds", [0])
    cells, seen = [], {}
    for k, entry in enumerate(entries):
        line = lines[k] if k < len(lines) else 1
        where = f"{path}:{line}"
        unknown = sorted(set(entry) - ENTRY_KEYS)
        if unknown:
            raise SerbenchError(f"{where}: unknown key {unknown[0]!r} (keys: {', '.join(sorted(ENTRY_KEYS))})")
        seeds = entry.get("seeds", default_seeds)
        if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
            raise SerbenchError(f"{where}: seeds must be a non-empty list of integers")
        overrides = entry.get("overrides", [])
        if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
            raise SerbenchError(f"{where}: overrides must be a list of \"key=value\" strings")
        for protocol in _names(entry, "protocols", where):
            for upstream in _names(entry, "upstreams", where):
                for downstream in _names(entry, "downstreams", where):
                    cell = Cell(protocol, upstream, downstream, entry.get("pooling"), entry.get("loss"),
                                entry.get("recipe"), tuple(overrides), tuple(seeds), line)
                    key = (cell.protocol, cell.upstream, cell.downstream, cell.pooling, cell.loss, cell.recipe,
                           tuple(sorted(cell.overrides)))
                    if key in seen:
                        raise SerbenchError(f"{where}: cell {cell.label} is already in the entry at line {seen[key]}")
                    seen[key] = line
                    cells.append(cell)
    return Suite(data["name"], data["version"], path, tuple(cells))


def plans(suite: Suite, executor: str = "local", executor_options: tuple[str, ...] = ()) -> list:
    """Every cell's plan, all checked before any runs (names, overrides, data locations)."""
    from serbench.plan import plan

    out = []
    for cell in suite.cells:
        try:
            out.append(plan(cell.upstream, cell.downstream, cell.pooling, cell.loss, cell.protocol, None, cell.seeds,
                            "auto", [*cell.overrides, *executor_options], recipe=cell.recipe, executor=executor))
        except SerbenchError as exc:
            raise SerbenchError(f"{suite.path}:{cell.line}: {cell.label}: {exc}") from None
    return out


def dry_run(suite: Suite, plans: list, out: Path) -> tuple[list[tuple[str, ...]], int, int]:
    """Per cell: (line, label, jobs, estimated features, run id); the total jobs, and the
    feature-cache bytes of every distinct (encoder, layers, dtype) x utterances, counted once."""
    from serbench.cache import human_bytes
    from serbench.execute import feature_footprint, prepare

    rows, jobs, seen = [], 0, {}
    for cell, the_plan in zip(suite.cells, plans):
        ws = prepare(the_plan, out / the_plan.run_id)  # builds the corpus and the encoder: every check
        n = len(ws.protocol.folds) * len(cell.seeds)
        folder, ids, size = feature_footprint(ws)
        shown = "none (fine-tuning or no cache)" if folder is None else human_bytes(size) + (
            " (shared with a cell above)" if (folder, ids) in seen else "")
        if folder is not None:
            seen.setdefault((folder, ids), size)
        rows.append((str(cell.line), cell.label, str(n), shown, the_plan.run_id))
        jobs += n
    return rows, jobs, sum(seen.values())


def leaderboard(suite: Suite, results: list, ci: str = "t") -> str:
    """The suite's table, one per protocol, in the order the suite names them."""
    from serbench.leaderboard import markdown

    try:
        shown = suite.path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:  # a suite outside the working directory: its file name
        shown = suite.path.name
    parts = [f"# {suite.name} (suite version {suite.version})\n\nGenerated by `serbench bench {shown}`.\n"]
    for protocol in dict.fromkeys(r.data["config"]["protocol"] for r in results):
        parts.append(f"## {protocol}\n\n" + markdown([r for r in results if r.data["config"]["protocol"] == protocol], ci))
    return "\n".join(parts)
