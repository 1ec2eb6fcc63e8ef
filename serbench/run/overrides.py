"""``-o section.param=value`` overrides: parsed as Python literals, never evaluated as code."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from typing import Any

from serbench.api.errors import SerbenchError, did_you_mean
from serbench.api.specs import Param

SECTIONS = ("upstream", "downstream", "pooling", "loss", "protocol", "train", "cache", "executor", "robustness", "report")


def parse_value(text: str) -> Any:
    """A literal (number, bool, None, list, tuple, quoted string), else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_overrides(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["downstream.hidden=128"]`` -> ``{"downstream": {"hidden": 128}}``."""
    parsed: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise SerbenchError(f"-o {item!r}: expected section.param=value, e.g. train.lr=1e-4")
        if section not in SECTIONS:
            raise SerbenchError(
                f"-o {item!r}: unknown section {section!r}{did_you_mean(section, SECTIONS)}; "
                f"sections: {', '.join(SECTIONS)}"
            )
        parsed.setdefault(section, {})[name] = parse_value(text.strip())
    return parsed


def check_keys(overrides: Mapping[str, Mapping[str, Any]], params: Mapping[str, tuple[Param, ...]]) -> None:
    """Raise on the first key that no chosen plugin has, listing every valid key."""
    valid = [f"{section}.{p.name}" for section, ps in params.items() for p in ps]
    for section, values in overrides.items():
        for name in values:
            key = f"{section}.{name}"
            if key not in valid:
                raise SerbenchError(
                    f"-o {key}: unknown parameter{did_you_mean(key, valid)}; valid keys: "
                    f"{', '.join(valid) or 'none'}"
                )
