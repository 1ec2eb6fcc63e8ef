"""Training recipes: a method is its model *and* the way its paper trained it.

A downstream may declare a :class:`Recipe` (``DownstreamMeta.recipe``): overrides in the ``-o`` key
space (``train.lr``, ``upstream.finetune``, ``downstream.*``), the pooling and loss it was
trained with, and the encoder and protocol the paper used. ``--recipe paper`` (the default
for a method that has one) applies it; ``--recipe shared`` applies the harness's common
frozen-encoder recipe (every ``train.*`` at its default), for an equal-budget comparison of
heads. What the user sets with ``-o``, ``--pooling`` or ``--loss`` always wins. The paper's
encoder and protocol are suggestions: shown, never imposed.

A recipe too big for a demo corpus may name a ``demo`` variant (overrides applied on top
when the protocol declares ``ProtocolMeta(demo=True)``, as ``synthetic`` does); the run log and
``result.json`` say so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from serbench.errors import SerbenchError

CHOICES = ("paper", "shared")


@dataclass(frozen=True)
class Recipe:
    """``overrides``: ``{"train.lr": 3e-5, ...}``; ``pooling``/``loss``: plugin names;
    ``suggested``: ``{"upstream": ..., "protocol": ..., "options": "-o protocol.x=y"}``;
    ``source``: where the values come from; ``demo``: overrides of the demo-sized variant
    and ``demo_why``, the reason it exists."""

    overrides: Mapping[str, Any]
    source: str
    pooling: str | None = None
    loss: str | None = None
    suggested: Mapping[str, str] = field(default_factory=dict)
    demo: Mapping[str, Any] = field(default_factory=dict)
    demo_why: str = ""

    def nested(self, demo: bool) -> dict[str, dict[str, Any]]:
        """The overrides as ``{section: {param: value}}``, with the demo variant on top."""
        out: dict[str, dict[str, Any]] = {}
        for key, value in {**self.overrides, **(self.demo if demo else {})}.items():
            section, _, name = key.partition(".")
            out.setdefault(section, {})[name] = value
        return out

    def describe(self) -> str:
        values = ", ".join(f"{k}={v}" for k, v in self.overrides.items())
        parts = [values]
        if self.pooling:
            parts.append(f"pooling {self.pooling}")
        if self.loss:
            parts.append(f"loss {self.loss}")
        return "; ".join(p for p in parts if p)


def suggestion(suggested: Mapping[str, str]) -> str:
    """``upstream wavlm_large, protocol iemocap_loso10``: what the paper ran, for display."""
    return ", ".join(f"{k} {v}" for k, v in suggested.items())


def choose(name: str | None, recipe: Recipe | None, downstream: str) -> str:
    """The recipe in force: ``paper`` for a method with one, else ``shared``."""
    if name is None:
        return "paper" if recipe is not None else "shared"
    if name not in CHOICES:
        raise SerbenchError(f"--recipe {name!r}: expected one of {', '.join(CHOICES)}")
    if name == "paper" and recipe is None:
        raise SerbenchError(f"--recipe paper: downstream {downstream} declares no paper recipe; use --recipe shared")
    return name


def merge(recipe_values: Mapping[str, Mapping[str, Any]], user: Mapping[str, Mapping[str, Any]]) -> dict:
    """Recipe overrides under the user's: ``-o`` always wins."""
    merged = {section: dict(values) for section, values in recipe_values.items()}
    for section, values in user.items():
        merged.setdefault(section, {}).update(values)
    return merged
