"""Every training stage's recipe, resolved against a run's configuration and recorded.

A method that trains in stages (WAP-LA's adapter stage, GMP-ATL's three, then serbench's
supervised training) names, per stage, the optimiser, learning rate, schedule, epochs, batch
and stopping rule in its paper :class:`serbench.api.recipes.Recipe` (``stages=``). A value is a
literal or the ``-o`` key that sets it (``"train.lr"``); a text may hold ``{train.patience}``
placeholders. Each stage lists the fields its paper states (``paper=``): every other field is
the plugin's own choice, and says so. Resolved against the configuration in force, the table
goes into ``result.json`` (``config.recipe.stages``), the run log and ``serbench list
downstreams NAME``, each value with where it came from:

- ``paper``: stated by the paper (and not changed below);
- ``plugin``: the plugin's own choice where the paper is silent;
- ``demo``: the recipe's demo-sized variant set it (demo corpora only);
- ``user``: the user's ``-o`` set it.

Why a table rather than prose: a reviewer, and a test, can check each stage against the
paper field by field, and a changed value cannot hide behind an unchanged source line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FIELDS = ("optimiser", "lr", "encoder_lr", "schedule", "epochs", "batch", "stopping")
KEY = re.compile(r"^(train|downstream|upstream|loss)\.[a-z_0-9]+$")
PLACEHOLDER = re.compile(r"\{((?:train|downstream|upstream|loss)\.[a-z_0-9]+)\}")
ORIGINS = ("paper", "plugin", "demo", "user")


@dataclass(frozen=True)
class StageRecipe:
    """One stage: ``stage`` is the name the method's ``stages()`` gives it (``supervised`` for
    serbench's final training); ``runs_if`` a boolean ``-o`` key without which the stage does
    not run (``downstream.adapter_training``); ``notes`` name choices outside the six fields."""

    stage: str
    optimiser: str
    lr: Any
    schedule: str
    epochs: Any
    batch: Any
    stopping: str
    paper: tuple[str, ...] = ()
    encoder_lr: Any = None
    runs_if: str | None = None
    notes: str = ""

    def __post_init__(self):
        unknown = set(self.paper) - set(FIELDS)
        if unknown:
            raise ValueError(f"stage {self.stage}: paper names unknown fields {sorted(unknown)}")


def setting(config: Mapping, key: str) -> Any:
    """The value in force of ``section.name`` in a plan's configuration."""
    section, _, name = key.partition(".")
    values = config[section] if section == "train" else config[section]["params"]
    return values[name]


def _origin(keys: Sequence[str], field: str, stage: StageRecipe, user: Mapping, demo: Mapping) -> str:
    set_by_user = any(k.partition(".")[2] in user.get(k.partition(".")[0], {}) for k in keys)
    if set_by_user:
        return "user"
    if any(k in demo for k in keys):
        return "demo"
    return "paper" if field in stage.paper else "plugin"


def _resolve_value(value: Any, config: Mapping) -> tuple[Any, list[str]]:
    """(value in force, the keys it was read from)."""
    if isinstance(value, str) and KEY.match(value):
        return setting(config, value), [value]
    if isinstance(value, str):
        keys = PLACEHOLDER.findall(value)
        return PLACEHOLDER.sub(lambda m: str(setting(config, m.group(1))), value), keys
    return value, []


def resolve(stages: Sequence[StageRecipe], config: Mapping, user: Mapping, demo: Mapping) -> list[dict]:
    """The stages that run under ``config``, each field as ``{"value", "from"}`` (and ``"key"``,
    the ``-o`` key, for a value read from one). ``user`` is
    the ``-o`` overrides as ``{section: {name: value}}``; ``demo`` the demo variant's
    overrides in force (``{}`` off a demo corpus)."""
    table = []
    for stage in stages:
        if stage.runs_if and not setting(config, stage.runs_if):
            continue
        row: dict[str, Any] = {"stage": stage.stage}
        for field in FIELDS:
            raw = getattr(stage, field)
            if raw is None:
                continue
            value, keys = _resolve_value(raw, config)
            row[field] = {"value": value, "from": _origin(keys, field, stage, user, demo)}
            if isinstance(raw, str) and KEY.match(raw):
                row[field]["key"] = raw  # the -o key that sets it
        if stage.notes:
            row["notes"] = _resolve_value(stage.notes, config)[0]
        table.append(row)
    return table


def describe(table: Sequence[Mapping]) -> str:
    """One log clause per stage: ``adapter: Adam, lr 0.0001 (paper), ...``."""
    parts = []
    for row in table:
        fields = ", ".join(f"{field} {row[field]['value']} ({row[field]['from']})" for field in FIELDS if field in row)
        parts.append(f"{row['stage']}: {fields}")
    return " | ".join(parts)


def listing(stages: Sequence[StageRecipe], defaults: Mapping[str, Any]) -> list[str]:
    """Lines for ``serbench list downstreams NAME``: each stage's fields as the recipe sets
    them (``defaults``: the value of a key under the paper recipe, off a demo corpus; a key
    without one shows as the harness's default), each marked paper or the plugin's own choice."""
    def fill(text: str) -> str:
        return PLACEHOLDER.sub(lambda m: str(defaults[m.group(1)]) if m.group(1) in defaults else f"({m.group(1)})", text)

    lines = []
    for stage in stages:
        cells = []
        for field in FIELDS:
            raw = getattr(stage, field)
            if raw is None:
                continue
            if isinstance(raw, str) and KEY.match(raw):
                shown = f"{defaults[raw]} ({raw})" if raw in defaults else f"{raw} (the harness's default)"
            elif isinstance(raw, str):
                shown = fill(raw)
            else:
                shown = str(raw)
            cells.append(f"{field} {shown} [{'paper' if field in stage.paper else 'own'}]")
        condition = f" (when {stage.runs_if})" if stage.runs_if else ""
        lines.append(f"stage {stage.stage}{condition}: " + "; ".join(cells) + (f". {fill(stage.notes)}" if stage.notes else ""))
    return lines
