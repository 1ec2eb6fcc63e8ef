"""All specs of all kinds, gathered from the plugin manager, with lookup and creation.

Hook implementations are called one plugin at a time so that a duplicate name can name both
plugins, and a hook that raises is reported against its plugin instead of breaking the rest.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import replace
from functools import lru_cache, partial
from typing import Any

from serbench.api.errors import SerbenchError, did_you_mean
from serbench.api.meta import typed
from serbench.api.specs import KINDS, Param, Spec
from serbench.run.plugin_manager import Plugins, make_plugin_manager

HOOKS = {
    "upstream": "register_upstreams",
    "downstream": "register_downstreams",
    "pooling": "register_poolings",
    "loss": "register_losses",
    "protocol": "register_protocols",
    "executor": "register_executors",
    "perturbation": "register_perturbations",
}
PLURALS = {HOOKS[k].removeprefix("register_"): k for k in KINDS}  # "upstreams" -> "upstream"


class Registry:
    """Specs by kind and name. Build one with :func:`registry` (cached) or directly."""

    def __init__(self, plugins: Plugins):
        self.plugins = plugins
        self.specs: dict[str, dict[str, Spec]] = {kind: {} for kind in KINDS}
        self.hooks_by_plugin: dict[str, list[str]] = {}
        self.names_by_plugin: dict[str, list[str]] = {}
        for kind in KINDS:
            self._collect(kind)

    def _collect(self, kind: str) -> None:
        caller = getattr(self.plugins.manager.hook, HOOKS[kind])
        for impl in caller.get_hookimpls():  # registration order: built-ins first
            self.hooks_by_plugin.setdefault(impl.plugin_name, []).append(HOOKS[kind])
            try:
                specs = list(impl.function())
            except Exception as exc:
                message = f"{HOOKS[kind]} raised {type(exc).__name__}: {exc}"
                self.plugins.failures[impl.plugin_name] = message
                warnings.warn(f"serbench plugin {impl.plugin_name!r}: {message}")
                continue
            for spec in specs:
                problem = self._problem(kind, spec, impl.plugin_name)
                if not problem:
                    try:
                        spec = replace(spec, meta=typed(kind, spec.meta), plugin=impl.plugin_name)
                    except SerbenchError as exc:
                        problem = f"{spec.name}: {exc}"
                if problem:  # skipped like a plugin that fails to import: the others keep working
                    self.plugins.failures.setdefault(impl.plugin_name, problem)
                    warnings.warn(f"serbench plugin {impl.plugin_name!r}: {problem} (skipped)")
                else:
                    self.specs[kind][spec.name] = spec
                    self.names_by_plugin.setdefault(impl.plugin_name, []).append(f"{kind}:{spec.name}")

    def _problem(self, kind: str, spec: Any, plugin: str) -> str:
        """Why ``spec`` cannot be registered ('' when it can): not a Spec, a name taken, a
        parameter whose default breaks its own declaration (its ``meta`` is checked by
        :func:`serbench.api.meta.typed`)."""
        if not isinstance(spec, Spec):
            return f"{HOOKS[kind]} returned {spec!r}, not a Spec"
        existing = self.specs[kind].get(spec.name)
        if existing is not None:
            return (f"duplicate {kind} name {spec.name!r}: registered by plugin "
                    f"{existing.plugin!r} and by plugin {plugin!r}")
        return spec_problem(spec)

    def get(self, kind: str, name: str) -> Spec:
        """The spec for ``name``; ``prefix:rest`` resolves through a spec named ``prefix:``
        (e.g. ``hf:microsoft/wavlm-large``), whose factory receives ``rest`` first."""
        kind = check_kind(kind)
        if name in self.specs[kind]:
            return self.specs[kind][name]
        prefix, colon, rest = name.partition(":")
        family = self.specs[kind].get(prefix + colon) if colon and rest else None
        if family is not None:
            return replace(family, name=name, factory=partial(family.load(), rest))
        names = sorted(self.specs[kind])
        raise SerbenchError(
            f"unknown {kind} {name!r}{did_you_mean(name, names)}; available: {', '.join(names) or 'none'}"
        )

    def create(self, kind: str, name: str, *context: Any, **params: Any) -> Any:
        spec = self.get(kind, name)
        return spec.build(*context, **spec.resolve(params, f"{kind} {name}"))


def spec_problem(spec: Spec) -> str:
    """What is wrong with a spec's declaration itself ('' if nothing): a parameter that is not a
    Param, a name given twice, or a default its own type, choices or bounds refuse."""
    seen = set()
    for param in spec.params:
        if not isinstance(param, Param):
            return f"{spec.name}: parameter {param!r} is not a Param"
        if param.name in seen:
            return f"{spec.name}: parameter {param.name!r} is declared twice"
        seen.add(param.name)
        try:
            param.coerce(param.default, f"{spec.name}.{param.name} default")
        except SerbenchError as exc:
            return str(exc)
    if not isinstance(spec.factory, str):  # a factory named by a string is checked when it is built
        try:
            signature = inspect.signature(spec.factory)
        except (TypeError, ValueError):
            return ""
        accepted = signature.parameters
        if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
            unknown = [name for name in seen if name not in accepted]
            if unknown:
                return f"{spec.name}: its factory takes no parameter {unknown[0]!r} (declared as a Param)"
    return ""


def check_kind(kind: str) -> str:
    if kind in KINDS:
        return kind
    if kind in PLURALS:
        return PLURALS[kind]
    raise SerbenchError(
        f"unknown plugin kind {kind!r}{did_you_mean(kind, [*PLURALS, *KINDS])}; "
        f"kinds: {', '.join(PLURALS)}"
    )


@lru_cache(maxsize=1)
def registry() -> Registry:
    """The process-wide registry (entry points are read once)."""
    return Registry(make_plugin_manager())


def available(kind: str) -> list[str]:
    """Names registered for ``kind`` ('upstream' or 'upstreams', ...), sorted."""
    return sorted(registry().specs[check_kind(kind)])


def create(kind: str, name: str, *context: Any, **params: Any) -> Any:
    """Build plugin ``name`` of ``kind``; ``context`` goes to the factory as is, ``params``
    are checked against the spec's parameters and completed with defaults."""
    return registry().create(kind, name, *context, **params)
