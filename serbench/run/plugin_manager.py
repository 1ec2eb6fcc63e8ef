"""The plugin manager factory: built-ins first, then third-party entry points.

Built-ins are the entry points that the ``serbench`` distribution itself declares, so there
is one list of them (pyproject.toml) and they go through the same door as everyone else's.
They load even with ``SERBENCH_DISABLE_PLUGIN_AUTOLOAD=1``, which skips only other packages.
"""

from __future__ import annotations

import importlib.metadata
import os
import warnings
from dataclasses import dataclass, field

import pluggy

from serbench.api import hookspecs
from serbench.api.errors import did_you_mean

GROUP = "serbench"
AUTOLOAD_ENV = "SERBENCH_DISABLE_PLUGIN_AUTOLOAD"


@dataclass
class Plugins:
    """A pluggy manager plus what failed to load and where each plugin came from."""

    manager: pluggy.PluginManager
    failures: dict[str, str] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # plugin name -> distribution


def _entry_points() -> list[tuple[str, importlib.metadata.EntryPoint]]:
    """(distribution name, entry point) of the group. Only the distributions that declare one
    have their metadata read: parsing every installed package's METADATA cost a quarter of a
    second in an environment of 150 packages."""
    found, seen, names = [], set(), {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        where = str(getattr(ep.dist, "_path", id(ep.dist)))
        if where not in names:
            names[where] = ep.dist.metadata["Name"] if ep.dist is not None else ""
        key = (names[where], ep.name, ep.value)
        if key not in seen:  # a dist can be visible twice on sys.path
            seen.add(key)
            found.append((names[where], ep))
    # built-ins first, then others in a stable order
    found.sort(key=lambda item: (item[0] != "serbench", item[0], item[1].name))
    return found


def make_plugin_manager(autoload: bool | None = None) -> Plugins:
    """Build a fresh manager. ``autoload=None`` reads ``SERBENCH_DISABLE_PLUGIN_AUTOLOAD``."""
    if autoload is None:
        autoload = os.environ.get(AUTOLOAD_ENV, "") in ("", "0")
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    plugins = Plugins(pm)
    for dist_name, ep in _entry_points():
        builtin = dist_name == "serbench"
        if not (builtin or autoload):
            continue
        if pm.get_plugin(ep.name) is not None:
            message = f"entry point name {ep.name!r} is already taken by {plugins.origins[ep.name]!r}"
            plugins.failures[f"{dist_name}:{ep.name}"] = message
            warnings.warn(f"serbench plugin {ep.name!r} from {dist_name!r} skipped: {message}")
            continue
        try:
            module = ep.load()
            unknown = _unknown_hooks(module)
            if unknown:
                raise LookupError(unknown)
            pm.register(module, name=ep.name)
        except BaseException as exc:  # a broken plugin (even one calling sys.exit) must not take the others down
            if isinstance(exc, KeyboardInterrupt):
                raise
            message = f"{type(exc).__name__}: {exc}"
            plugins.failures[ep.name] = message
            warnings.warn(f"serbench plugin {ep.name!r} ({ep.value}) failed to load: {message}")
            continue
        plugins.origins[ep.name] = dist_name
    pm.check_pending()  # every registered hook implementation has a spec (checked per plugin above)
    return plugins


def _unknown_hooks(module) -> str:
    """Why ``module`` cannot register: a function marked ``@hookimpl`` whose name is no serbench
    hook (pluggy would register it silently and it would contribute nothing); '' if none."""
    known = {name for name in dir(hookspecs) if name.startswith("register_")}
    for name in dir(module):
        if hasattr(getattr(module, name), f"{GROUP}_impl") and name not in known:
            return f"@hookimpl {name} is not a serbench hook{did_you_mean(name, sorted(known))}"
    return ""
