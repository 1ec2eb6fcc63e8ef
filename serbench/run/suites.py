"""Benchmark suites: a small TOML file in ``benchmarks/`` names a matrix of runs.

    name = "smoke"
    version = "1"
    seeds = [0, 1, 2]                      # default for every matrix entry

    [[matrix]]
    protocols = ["synthetic"]
    upstreams = ["fbank"]
    downstreams = ["superb", "sap_gap"]
    overrides = ["protocol.per_class=4"]   # optional: pooling, loss, recipe, seeds too

Each ``[[matrix]]`` entry expands to protocols x upstreams x downstreams cells. A suite is data
that people share, so the whole file is checked against its schema before a single cell is
expanded: unknown keys are refused with the nearest valid one, every value's type is checked
(seeds are integers, not booleans), names must be plugin names (not paths or URLs), and the
number of cells is computed from the lists' lengths and refused above :data:`MAX_CELLS` at
once. Where a run executes is the user's own business: executor settings (Slurm setup lines,
partitions, Ray addresses) come only from the command line (``serbench bench -o
executor.KEY=VALUE``), and a suite that sets one is refused. Then every cell is checked
(names, overrides, duplicates) before any work; an error names the file and the line of the
key or entry at fault. ``serbench bench`` runs the cells one after the other (each resumes),
then writes the suite's leaderboard, one table per protocol.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from serbench.api.errors import SerbenchError, did_you_mean
from serbench.api.protocol import SAFE_NAME

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SUITE_KEYS = ("name", "version", "seeds", "matrix")
ENTRY_KEYS = ("protocols", "upstreams", "downstreams", "pooling", "loss", "recipe", "overrides", "seeds")
RECIPES = ("paper", "shared")
MAX_CELLS = 1000  # runs in one suite: above it, split the suite (each cell is a whole run of folds x seeds)
MAX_SEEDS = 100  # seeds of one entry
MAX_BYTES = 1_000_000  # a suite is a small file: a larger one is refused before it is parsed
MAX_SEED = 2**32  # seeds are integers in [0, 2**32), as on the command line
PLUGIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}")  # hf:org/model@rev at most; no space or control
EXECUTOR_ONLY_ON_THE_COMMAND_LINE = (
    "executor settings (setup lines, partitions, addresses) reach a shell or a network: they come only from "
    "the command line (serbench bench SUITE --executor NAME -o executor.KEY=VALUE), never from a suite file")


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


@dataclass(frozen=True)
class _Entry:
    """One ``[[matrix]]`` entry once its schema is checked: nothing expanded yet."""

    line: int
    protocols: tuple[str, ...]
    upstreams: tuple[str, ...]
    downstreams: tuple[str, ...]
    pooling: str | None
    loss: str | None
    recipe: str | None
    overrides: tuple[str, ...]
    seeds: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.protocols) * len(self.upstreams) * len(self.downstreams)


def _unknown_key(key: str, valid: tuple[str, ...], where: str) -> SerbenchError:
    if key == "executor":
        return SerbenchError(f"{where}: key 'executor': {EXECUTOR_ONLY_ON_THE_COMMAND_LINE}")
    return SerbenchError(f"{where}: unknown key {key!r}{did_you_mean(key, valid)}; keys: {', '.join(valid)}")


def _name(value: Any, key: str, where: str) -> str:
    """A plugin name as a suite may give it: a registered name or ``family:id``, never a path or URL
    (an upstream such as ``hf:`` or ``s3prl`` would read or fetch it)."""
    if not isinstance(value, str):
        raise SerbenchError(f"{where}: {key}: expected a name (a string), got {value!r} ({type(value).__name__})")
    shown = value if len(value) <= 60 else value[:57] + "..."
    if "://" in value:
        raise SerbenchError(f"{where}: {key}: {shown!r} is a URL; a suite names plugins and fetches nothing")
    if not PLUGIN_NAME.fullmatch(value):
        raise SerbenchError(f"{where}: {key}: {shown!r} is not a plugin name (letters, digits and . _ : / @ + -; "
                            "serbench list shows them)")
    _, colon, rest = value.partition(":")
    if ".." in value.split("/") or (colon and rest[:1] in ("/", ".", "~")):
        raise SerbenchError(f"{where}: {key}: {shown!r} names a path; a suite names plugins: give a local model "
                            "on the command line (serbench run --upstream ...)")
    return value


def _names(entry: dict, key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise SerbenchError(f"{where}: {key} must be a non-empty list of names, e.g. {key} = [\"...\"]")
    names = tuple(_name(v, key, where) for v in value)
    twice = sorted({n for n in names if names.count(n) > 1}) if len(set(names)) < len(names) else []
    if twice:
        raise SerbenchError(f"{where}: {key}: {twice[0]!r} is named twice")
    return names


def _optional_name(entry: dict, key: str, where: str) -> str | None:
    return None if key not in entry else _name(entry[key], key, where)


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    """Integers in [0, 2**32), each once; ``true``/``false`` are booleans, not seeds 1 and 0."""
    if not isinstance(value, list) or not value:
        raise SerbenchError(f"{where}: seeds must be a non-empty list of integers, e.g. seeds = [0, 1, 2]")
    if len(value) > MAX_SEEDS:
        raise SerbenchError(f"{where}: seeds: {len(value)} seeds, above the limit of {MAX_SEEDS} per entry")
    for seed in value:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise SerbenchError(f"{where}: seeds: {seed!r} ({type(seed).__name__}) is not an integer")
        if not 0 <= seed < MAX_SEED:
            raise SerbenchError(f"{where}: seeds: {seed} is out of range (seeds are integers from 0 to 2**32 - 1)")
    if len(set(value)) < len(value):
        twice = sorted({s for s in value if value.count(s) > 1})[0]
        raise SerbenchError(f"{where}: seeds: seed {twice} is given twice (every job would run twice)")
    return tuple(value)


def _overrides(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(o, str) for o in value):
        raise SerbenchError(f"{where}: overrides must be a list of \"section.key=value\" strings")
    for item in value:
        key, sep, text = item.partition("=")
        shown = item if len(item) <= 60 else item[:57] + "..."
        if not sep or "." not in key.strip():
            raise SerbenchError(f"{where}: overrides: {shown!r} is not \"section.key=value\" (e.g. \"train.lr=1e-4\")")
        if key.strip().startswith("executor."):
            raise SerbenchError(f"{where}: overrides: {key.strip()!r}: {EXECUTOR_ONLY_ON_THE_COMMAND_LINE}")
        if "://" in text:
            raise SerbenchError(f"{where}: overrides: {key.strip()} is a URL; a suite fetches nothing (a checkpoint "
                                "from a URL would be unpickled): give it on the command line (serbench run -o ...)")
    return tuple(value)


def _entry(entry: Any, line: int, default_seeds: tuple[int, ...], path: Path) -> _Entry:
    where = f"{path}:{line}"
    if not isinstance(entry, dict):
        raise SerbenchError(f"{where}: a [[matrix]] entry must be a table of keys")
    for key in entry:
        if key not in ENTRY_KEYS:
            raise _unknown_key(key, ENTRY_KEYS, where)
    recipe = _optional_name(entry, "recipe", where)
    if recipe is not None and recipe not in RECIPES:
        raise SerbenchError(f"{where}: recipe {recipe!r}: expected one of {', '.join(RECIPES)}")
    return _Entry(line, _names(entry, "protocols", where), _names(entry, "upstreams", where),
                  _names(entry, "downstreams", where), _optional_name(entry, "pooling", where),
                  _optional_name(entry, "loss", where), recipe, _overrides(entry.get("overrides", []), where),
                  _seeds(entry["seeds"], where) if "seeds" in entry else default_seeds)


def _key_line(text: str, key: str) -> int:
    """The line of a top-level ``key = ...`` (or ``[key]``), 1 when it cannot be found."""
    pattern = re.compile(rf"\s*(?:{re.escape(key)}\s*=|\[\s*{re.escape(key)}\s*\])")
    return next((n for n, line in enumerate(text.splitlines(), start=1) if pattern.match(line)), 1)


def load(path: str | Path) -> Suite:
    """Read, check and expand a suite file; SerbenchError names the file and line at fault.
    Everything is checked, and the number of cells computed, before any cell is made."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_BYTES:
            raise SerbenchError(f"{path}: {path.stat().st_size} bytes, above the limit of {MAX_BYTES} for a suite file")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SerbenchError(f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})") from None
    except OSError as exc:
        raise SerbenchError(f"{path}: cannot read the suite ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SerbenchError(f"{path}: not valid TOML ({str(exc).splitlines()[0]})") from None
    for key in data:
        if key not in SUITE_KEYS:
            raise _unknown_key(key, SUITE_KEYS, f"{path}:{_key_line(text, key)}")
    for key in ("name", "version"):
        if not isinstance(data.get(key), str):
            raise SerbenchError(f"{path}: the suite needs a string {key} (name = \"smoke\", version = \"1\")")
    if not SAFE_NAME.fullmatch(data["name"]):  # it names the leaderboard file: leaderboards/<name>.md
        raise SerbenchError(f"{path}: name {data['name']!r} cannot name a file (letters, digits, '.', '_', '-')")
    if not re.fullmatch(r"[^\x00-\x1f\x7f]{1,64}", data["version"]):  # shown in the leaderboard's heading
        raise SerbenchError(f"{path}:{_key_line(text, 'version')}: version must be 1 to 64 printable characters")
    default_seeds = _seeds(data["seeds"], f"{path}:{_key_line(text, 'seeds')}") if "seeds" in data else (0,)
    raw = data.get("matrix")
    if not isinstance(raw, list) or not raw:
        raise SerbenchError(f"{path}: no [[matrix]] entry")
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if re.match(r"\s*\[\[\s*matrix\s*\]\]", line)]
    entries = [_entry(entry, lines[k] if k < len(lines) else _key_line(text, "matrix"), default_seeds, path)
               for k, entry in enumerate(raw)]
    total = sum(entry.size for entry in entries)
    if total > MAX_CELLS:
        big = max(entries, key=lambda e: e.size)
        raise SerbenchError(
            f"{path}: {total} cells, above the limit of {MAX_CELLS} runs per suite (line {big.line}: "
            f"{len(big.protocols)} protocols x {len(big.upstreams)} upstreams x {len(big.downstreams)} downstreams); "
            "split it into several suites")
    return Suite(data["name"], data["version"], path, _expand(entries, path))


def _expand(entries: list[_Entry], path: Path) -> tuple[Cell, ...]:
    cells, seen = [], {}
    for entry in entries:
        for protocol in entry.protocols:
            for upstream in entry.upstreams:
                for downstream in entry.downstreams:
                    cell = Cell(protocol, upstream, downstream, entry.pooling, entry.loss, entry.recipe,
                                entry.overrides, entry.seeds, entry.line)
                    key = (cell.protocol, cell.upstream, cell.downstream, cell.pooling, cell.loss, cell.recipe,
                           tuple(sorted(cell.overrides)))
                    if key in seen:
                        raise SerbenchError(f"{path}:{entry.line}: cell {cell.label} is already in the entry at line "
                                            f"{seen[key]}")
                    seen[key] = entry.line
                    cells.append(cell)
    return tuple(cells)


def check_executor(executor: str, options: tuple[str, ...]) -> dict:
    """The command line's executor and its ``-o executor.KEY=VALUE`` options, checked (and the
    executor built once, so its own checks run) before any cell: an error names ``--executor`` or
    the ``-o`` option, never a cell of the suite."""
    from serbench.run.overrides import check_keys, parse_overrides
    from serbench.run.registry import registry

    try:
        spec = registry().get("executor", executor)
    except SerbenchError as exc:
        raise SerbenchError(f"--executor {executor}: {exc}") from None
    given = parse_overrides(options)
    check_keys({"executor": given.get("executor", {})}, {"executor": spec.params})
    params = spec.resolve(given.get("executor", {}), "-o executor")
    spec.build(**params)
    return params


_CELL_OPTIONS = {"-o ": "overrides: ", "--pooling ": "pooling ", "--recipe ": "recipe ", "--seeds": "seeds"}


def plans(suite: Suite, executor: str = "local", executor_options: tuple[str, ...] = (),
          corpus_optional: bool = False) -> list:
    """Every cell's plan, all checked before any runs (names, overrides, data locations). A
    cell's error names its file and line, and the suite's key (``overrides``), not the command
    line option the same check names for ``serbench run``. ``corpus_optional`` (a dry run): a
    cell whose corpus is not here is checked all the same, its plan's ``data`` left None."""
    from serbench.run.plan import plan
    from serbench.run.request import RunRequest

    executor_options = tuple(executor_options)
    check_executor(executor, executor_options)
    out = []
    for cell in suite.cells:
        if not corpus_optional:
            _check_data_location(suite, cell)
        try:
            out.append(plan(RunRequest(cell.upstream, cell.downstream, cell.pooling, cell.loss, cell.protocol, None,
                                       tuple(cell.seeds), "auto", (*cell.overrides, *executor_options),
                                       recipe=cell.recipe, executor=executor, corpus_optional=corpus_optional)))
        except SerbenchError as exc:
            message = str(exc)
            for option, key in _CELL_OPTIONS.items():
                if message.startswith(option):
                    message = key + message[len(option):]
                    break
            raise SerbenchError(f"{suite.path}:{cell.line}: {cell.label}: {message}") from None
    return out


def _check_data_location(suite: Suite, cell: Cell) -> None:
    """A cell whose corpus has no saved location: say how to set one for ``serbench bench``,
    which takes no ``--data`` (a suite runs on the corpora the user saved)."""
    from serbench.api.user_config import data_location, env_var
    from serbench.run.registry import registry

    try:
        key = registry().get("protocol", cell.protocol).meta.data_key
    except SerbenchError:
        return  # an unknown protocol: plan() names it, with the nearest one
    if key and data_location(key, None) is None:
        raise SerbenchError(f"{suite.path}:{cell.line}: {cell.label}: protocol {cell.protocol} needs the {key} corpus "
                            f"and no location is saved: serbench config set data.{key} PATH, or set {env_var(key)}")


class DryRun(NamedTuple):
    """What ``serbench bench --dry-run`` shows: one row per cell (line, label, jobs, estimated
    features, run id), the jobs and cache bytes counted, and the corpora whose absence leaves a
    cell's numbers unknown (corpus name -> how many cells wait for it)."""

    rows: list[tuple[str, ...]]
    jobs: int
    cache_bytes: int
    missing: dict[str, int]
    jobs_unknown: int


def dry_run(suite: Suite, plans: list, out: Path) -> DryRun:
    """Per cell: (line, label, jobs, estimated features, run id); the total jobs, and the
    feature-cache bytes of every distinct (encoder, layers, dtype) x utterances, counted once.
    A cell whose corpus is not here (its plan's ``data`` None) is listed all the same: its jobs
    from the protocol's declared fold count, its estimate and run id marked unknown (both read
    the corpus)."""
    from serbench.run.cache import human_bytes
    from serbench.run.execute import feature_footprint, prepare

    rows, jobs, seen, missing, unknown_jobs = [], 0, {}, {}, 0
    for cell, the_plan in zip(suite.cells, plans):
        key = the_plan.specs["protocol"].meta.data_key
        if key and the_plan.data is None:
            missing[key] = missing.get(key, 0) + 1
            folds = the_plan.specs["protocol"].meta.folds
            n = folds * len(cell.seeds)
            jobs += n
            unknown_jobs += 0 if folds else 1
            rows.append((str(cell.line), cell.label, str(n) if folds else f"? x {len(cell.seeds)} seeds",
                         f"unknown: needs the {key} corpus", "unknown until the corpus is read"))
            continue
        ws = prepare(the_plan, out / the_plan.run_id)  # builds the corpus and the encoder: every check
        n = len(ws.protocol.folds) * len(cell.seeds)
        folder, ids, size = feature_footprint(ws)
        shown = "none (fine-tuning or no cache)" if folder is None else human_bytes(size) + (
            " (shared with a cell above)" if (folder, ids) in seen else "")
        if folder is not None:
            seen.setdefault((folder, ids), size)
        rows.append((str(cell.line), cell.label, str(n), shown, the_plan.run_id))
        jobs += n
    return DryRun(rows, jobs, sum(seen.values()), missing, unknown_jobs)


def leaderboard(suite: Suite, results: list, ci: str = "t") -> str:
    """The suite's table, one per protocol, in the order the suite names them."""
    from serbench.report.leaderboard import markdown

    try:
        shown = suite.path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:  # a suite outside the working directory: its file name
        shown = suite.path.name
    parts = [f"# {suite.name} (suite version {suite.version})\n\nGenerated by `serbench bench {shown}`.\n"]
    for protocol in dict.fromkeys(r.data["config"]["protocol"] for r in results):
        parts.append(f"## {protocol}\n\n" + markdown([r for r in results if r.data["config"]["protocol"] == protocol], ci))
    return "\n".join(parts)
