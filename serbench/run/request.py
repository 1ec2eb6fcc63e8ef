"""What a user asked a run to be, as one frozen value: the names, overrides and recipe, before any
is checked.

A :class:`RunRequest` is what ``serbench run``, a suite's cell, ``load_plan``'s rebuild from a run
directory's ``config.json`` and the Python API hand to :func:`serbench.run.plan.plan`, instead of
fifteen parameters spelt out at every call. It is immutable so that a plan can never be resolved
from a request that changed under it; :meth:`RunRequest.replace` gives a changed copy. Nothing is
checked here but the ``-o`` syntax (the plan checks every name against the registry).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from serbench.run.overrides import parse_overrides

Override = tuple[str, str, Any]  # (section, parameter, value): -o section.parameter=value


def _freeze(value: Any) -> Any:
    """A parsed override value made immutable (lists become tuples; :func:`_thaw` undoes it)."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    if isinstance(value, MappingProxyType):
        return {k: _thaw(v) for k, v in value.items()}
    return value


def normalise_overrides(overrides: Mapping[str, Mapping[str, Any]] | Sequence[str] | Sequence[Override] | None,
                        ) -> tuple[Override, ...]:
    """``{"train": {"lr": 1e-4}}``, CLI-style ``["train.lr=1e-4"]`` or (section, key, value)
    triples as one tuple of triples, in the order given (a later value for a key replaces the
    earlier one, as ``-o`` does); a malformed ``-o`` item raises SerbenchError."""
    if overrides is None:
        return ()
    if isinstance(overrides, Mapping):
        nested = overrides
    elif all(isinstance(item, tuple) and len(item) == 3 for item in overrides):
        nested = {}
        for section, key, value in overrides:
            nested.setdefault(section, {})[key] = _thaw(value)
    else:
        nested = parse_overrides(overrides)
    return tuple((str(section), str(key), _freeze(value))
                 for section, values in nested.items() for key, value in dict(values).items())


@dataclass(frozen=True)
class RunRequest:
    """One run as asked for (``serbench run``'s options), not yet checked.

    ``overrides``: given as a mapping of sections, CLI-style ``section.key=value`` strings or
    triples, kept as (section, key, value) triples; ``seeds`` and ``perturbations`` as tuples.
    ``recipe``: ``"paper"``, ``"shared"`` or None (the method's default). ``executor``: where the
    jobs run (not part of the run's identity). ``corpus_optional``: a corpus that is not here
    leaves the plan's data None (a suite's dry run). ``task``: ``categorical`` or ``dimensional``.
    """

    upstream: str
    downstream: str
    pooling: str | None = None
    loss: str | None = None
    protocol: str = "iemocap_5fold"
    data: str | Path | None = None
    seeds: tuple[int, ...] = (0,)
    device: str = "auto"
    overrides: tuple[Override, ...] = field(default=())
    recipe: str | None = None
    executor: str = "local"
    perturbations: tuple[str, ...] = ()
    corpus_optional: bool = False
    task: str = "categorical"

    def __post_init__(self) -> None:
        object.__setattr__(self, "overrides", normalise_overrides(self.overrides))
        object.__setattr__(self, "seeds", tuple(self.seeds))
        object.__setattr__(self, "perturbations", tuple(self.perturbations))

    def override_sections(self) -> dict[str, dict[str, Any]]:
        """The overrides as a fresh ``{section: {key: value}}`` (the plan's working copy)."""
        nested: dict[str, dict[str, Any]] = {}
        for section, key, value in self.overrides:
            nested.setdefault(section, {})[key] = _thaw(value)
        return nested

    def replace(self, **changes: Any) -> RunRequest:
        """This request with ``changes`` (another device, more overrides as triples or strings)."""
        return dataclasses.replace(self, **changes)

