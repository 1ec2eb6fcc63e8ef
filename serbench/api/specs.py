"""What a plugin hook returns: declarative specs with typed, documented parameters.

A spec is data, not behaviour: the registry can list, document and validate a plugin's
parameters without building it, and a result can record exactly which version scored it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serbench.api.errors import SerbenchError, did_you_mean

KINDS = ("upstream", "downstream", "pooling", "loss", "protocol", "executor", "perturbation")


@dataclass(frozen=True)
class Param:
    """One tunable parameter: its type is enforced when overrides are applied."""

    name: str
    type: type
    default: Any
    doc: str
    choices: tuple[Any, ...] | None = None
    bounds: str = ""  # the allowed range: "> 0", ">= 0", "(0, 1)", "[0, 1)", ...; each item's for a tuple
    item: type | None = None  # a tuple's element type

    def __post_init__(self) -> None:
        if self.bounds:
            _parse_bounds(self.bounds, self.name)

    def coerce(self, value: Any, where: str) -> Any:
        """Return ``value`` converted to this parameter's type, or raise naming ``where``."""
        if value is None and self.default is None:
            return None
        converted = _convert(value, self.type)
        if converted is _INVALID:
            raise SerbenchError(
                f"{where}: expected {self.type.__name__}, got {value!r} ({type(value).__name__})"
            )
        if self.choices is not None and converted not in self.choices:
            raise SerbenchError(
                f"{where}: {converted!r} is not one of {', '.join(map(repr, self.choices))}"
            )
        items = converted if self.type is tuple else (converted,)
        if self.item is not None:
            items = tuple(_convert(v, self.item) for v in items)
            bad = [v for v, c in zip(converted, items) if c is _INVALID]
            if bad:
                raise SerbenchError(f"{where}: expected a list of {self.item.__name__}, got {bad[0]!r} in {value!r}")
            converted = items if self.type is tuple else converted
        infinite = [v for v in items if isinstance(v, float) and not math.isfinite(v)]
        if infinite:
            raise SerbenchError(f"{where}: {infinite[0]!r} is not a finite number")
        if self.bounds:
            inside = _parse_bounds(self.bounds, self.name)
            outside = [v for v in items if isinstance(v, (int, float)) and not inside(v)]
            if outside:
                raise SerbenchError(f"{where}: {outside[0]!r} is out of range (must be {self.range_text})")
        return converted

    @property
    def range_text(self) -> str:
        """``bounds`` in words for messages and tables: '>= 1', 'in (0, 1)'; '' when unbounded."""
        return f"in {self.bounds}" if self.bounds[:1] in "[(" and self.bounds else self.bounds


_NUMBER = r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:e-?\d+)?"
_ONE_SIDED = re.compile(rf"(>=|>|<=|<)\s*({_NUMBER})")
_INTERVAL = re.compile(rf"([\[(])\s*({_NUMBER})\s*,\s*({_NUMBER})\s*([\])])")


def _parse_bounds(text: str, name: str) -> Callable[[float], bool]:
    """``"> 0"``, ``"[0, 1)"``, ... as a predicate; a malformed one is the plugin's error."""
    one = _ONE_SIDED.fullmatch(text.strip())
    if one:
        op, limit = one.group(1), float(one.group(2))
        return {">": lambda v: v > limit, ">=": lambda v: v >= limit,
                "<": lambda v: v < limit, "<=": lambda v: v <= limit}[op]
    two = _INTERVAL.fullmatch(text.strip())
    if two:
        left, low, high, right = two.group(1), float(two.group(2)), float(two.group(3)), two.group(4)
        return lambda v: (v >= low if left == "[" else v > low) and (v <= high if right == "]" else v < high)
    raise ValueError(f"Param {name!r}: bounds {text!r} is not '> x', '>= x', '< x', '<= x' or an interval like '[0, 1)'")


_INVALID = object()
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _convert(value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        return _INVALID
    if kind is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _INVALID
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return _INVALID
    if kind is str:
        return value if isinstance(value, str) else _INVALID
    if kind is tuple:
        if isinstance(value, (list, tuple)):
            return tuple(value)
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            return (value,)
        return _INVALID
    return value if isinstance(value, kind) else _INVALID


@dataclass(frozen=True)
class Spec:
    """A registered plugin of one kind.

    ``factory`` receives the host's context positionally (what the kind needs: the input
    dimensions for a downstream, the class counts for a loss, ...) and the resolved
    parameters as keywords. It may be given as ``"package.module:attribute"``, imported only
    when the plugin is built: listing plugins then imports no torch. ``version`` must be bumped whenever a change can move scores.
    ``meta`` holds kind-specific declarations (a downstream's default pooling, a protocol's
    data key, a paper's reported numbers): the kind's dataclass in :mod:`serbench.api.meta`, or a
    dict of its keys, which the registry turns into that dataclass (refusing unknown keys).
    """

    name: str
    factory: Callable[..., Any] | str
    summary: str
    params: tuple[Param, ...] = ()
    version: str = "1"
    citation: str = ""
    meta: Any = field(default_factory=dict)  # after registration: the kind's serbench.api.meta dataclass
    plugin: str = ""  # filled in by the registry: which plugin registered it

    def build(self, *context: Any, **params: Any) -> Any:
        """Call the factory (importing it first when it is named by a string)."""
        return self.load()(*context, **params)

    def doc(self) -> str:
        """The factory's docstring (or its module's), read from the source without importing
        it, so ``serbench list KIND NAME`` stays fast; empty when there is none."""
        if not isinstance(self.factory, str):
            return inspect.getdoc(getattr(self.factory, "func", self.factory)) or ""
        module, _, attribute = self.factory.partition(":")
        try:
            found = importlib.util.find_spec(module)
            tree = ast.parse(Path(found.origin).read_text()) if found and found.origin else None
        except (ImportError, OSError, SyntaxError, ValueError):
            return ""
        if tree is None:
            return ""
        for node in tree.body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == attribute and ast.get_docstring(node):
                return ast.get_docstring(node)
        return ast.get_docstring(tree) or ""  # a plugin module documents its one component

    def load(self) -> Callable[..., Any]:
        if not isinstance(self.factory, str):
            return self.factory
        module, _, attribute = self.factory.partition(":")
        try:
            return getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as exc:
            raise SerbenchError(f"{self.name}: its factory {self.factory!r} cannot be loaded ({exc})") from exc

    def param(self, name: str, where: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        names = [p.name for p in self.params]
        valid = ", ".join(names) if names else "none"
        raise SerbenchError(
            f"{where}: {self.name!r} has no parameter {name!r}{did_you_mean(name, names)}; "
            f"valid: {valid}"
        )

    def resolve(self, given: Mapping[str, Any], where: str) -> dict[str, Any]:
        """Defaults overlaid with ``given``, each value checked against its Param."""
        resolved = {p.name: p.default for p in self.params}
        for key, value in given.items():
            resolved[key] = self.param(key, where).coerce(value, f"{where}.{key}")
        return resolved
