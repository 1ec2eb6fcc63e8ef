"""The executor contract: where a run's units of work run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from serbench.api.progress import Reporter
from serbench.api.work import WorkUnit


@runtime_checkable
class Executor(Protocol):
    """What ``register_executors`` factories build: ``factory(**params)`` (``-o executor.KEY=VALUE``;
    they never change a run's id) returns an object of this shape.

    - ``in_process`` (optional attribute, default False): True when the units should run in the
      calling process, in order; serbench then never calls ``map``.
    - ``slots(n_units) -> int``: how many units run at once (the number of feature-extraction
      shards serbench cuts).
    - ``map(run_dir, units, device, reporter) -> {unit: error}``: run every
      :class:`~serbench.api.work.WorkUnit` where it likes (a unit pickles; call it there,
      pinned with ``unit.on(worker_device(...))`` when the task's device differs from the
      run's ``device``), and return the units that raised, with a one-line error each. First
      the extraction shards, then (in a second call) the (fold, seed) jobs. ``reporter``
      (:class:`~serbench.api.progress.Reporter`) takes progress lines.

    Determinism: a job's result does not depend on the executor; ``serbench check-plugin
    executor NAME`` runs a small run through it and compares the summary with the in-process
    one. Every unit must run or be reported as failed: one left out is caught as "not done".
    """

    def slots(self, units: int) -> int:
        ...

    def map(self, run_dir: Path, units: Sequence[WorkUnit], device: str, reporter: Reporter) -> Mapping[WorkUnit, str]:
        ...
