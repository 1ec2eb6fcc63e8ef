"""The unit of work an executor runs, as data: which job (or extraction shard) of which run
directory, on which device, and the importable function that runs it.

A run is a set of independent units: first, when features are missing from the cache, the
:class:`Shard` s of frozen-feature extraction, then one :class:`Job` per (fold, seed). Each is
run from the run directory and the feature cache alone, so any machine that sees both can run
it; a per-job claim keeps two workers off one job, and a unit that was done before returns at
once. An executor receives :class:`WorkUnit` s: it ships each one (they pickle: plain fields
and a module-level function) to wherever it likes and calls it there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

KEY_SEPARATOR = "_seed-"


class Job(NamedTuple):
    """One (fold, seed) job of a run: what the runner dispatches, workers run and ``fuse`` pairs.

    Its one spelling as text is :attr:`key` (``fold-<fold>_seed-<seed>``): the stem of every
    file a job leaves in a run directory (record, predictions, claim, failure, saved model,
    stage checkpoints) and its key in maps written to disk; :meth:`parse` reads it back.
    ``str(job)`` (``fold 1 seed 0``) is for messages only."""

    fold: str
    seed: int

    def __str__(self) -> str:
        return f"fold {self.fold} seed {self.seed}"

    @property
    def key(self) -> str:
        return f"fold-{self.fold}{KEY_SEPARATOR}{self.seed}"

    @classmethod
    def parse(cls, key: str) -> Job:
        """The job a :attr:`key` names (a fold name may itself hold ``_seed-``: the seed is
        after the last one); a key that is not one raises ValueError naming it."""
        fold, separator, seed = key.removeprefix("fold-").rpartition(KEY_SEPARATOR)
        if not key.startswith("fold-") or not separator or not fold or not seed.isdigit():
            raise ValueError(f"{key!r} is not a job key (fold-<fold>_seed-<seed>)")
        return cls(fold, int(seed))


class Shard(NamedTuple):
    """Shard ``index`` of ``count`` of a run's frozen-feature extraction."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"features shard {self.index + 1}/{self.count}"


@dataclass(frozen=True)
class WorkUnit:
    """One unit, ready to run anywhere: ``work(run_dir, unit, device) -> str`` (a line for the
    log; raises on failure, a job's traceback also kept in the run directory's ``failed/``).

    ``work`` is a module-level function, so a WorkUnit pickles by reference (process pools,
    Ray, submitit); calling the unit in a worker imports what it needs there. Deterministic:
    a job's result depends on the run directory's configuration, its fold and its seed, never
    on which worker ran it or in what order. ``on(device)`` is the same unit pinned to another
    device (a cluster task given GPUs runs on ``cuda``: :func:`serbench.api.devices.worker_device`).
    """

    run_dir: str
    unit: Job | Shard
    device: str
    work: Callable[..., str]
    new_cache: Callable[[], object] | None = None  # a module-level class too: it pickles by reference

    def __call__(self, cache: object | None = None) -> str:
        """Run the unit here. ``cache``: an object made by ``new_cache()`` that a worker which
        runs units one after another keeps for its lifetime and hands to each (serbench keeps
        the last run directory's rebuilt workspace in it, opaque to the executor); without one
        the unit rebuilds what it needs from the run directory."""
        if cache is None:
            return self.work(self.run_dir, self.unit, self.device)
        return self.work(self.run_dir, self.unit, self.device, cache=cache)

    def cached_in(self, worker_state: dict) -> str:
        """Run the unit with the cache kept in ``worker_state`` (a worker process's own dict),
        made there on its first unit: what an executor's worker calls to reuse its cache."""
        if "cache" not in worker_state and self.new_cache is not None:
            worker_state["cache"] = self.new_cache()
        return self(worker_state.get("cache"))

    def on(self, device: str) -> WorkUnit:
        return replace(self, device=device)

    def __str__(self) -> str:
        return str(self.unit)
