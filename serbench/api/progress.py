"""Progress for a run: rich bars on a terminal, plain log lines elsewhere, a log file always."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.errors import LiveError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

log = logging.getLogger("serbench")
_QUIET = {"quiet": False}  # what the command's Reporter was asked: a plugin's steps() follow it


class Reporter:
    """Where a run reports what it does. ``quiet`` keeps the terminal silent."""

    def __init__(self, quiet: bool = False, console: Console | None = None):
        self.quiet = quiet
        _QUIET["quiet"] = quiet
        self.console = console or Console(stderr=True)
        self.interactive = not quiet and self.console.is_terminal
        self._progress: Progress | None = None
        log.setLevel(logging.INFO)
        self._stream = None
        if not quiet and not self.interactive:
            self._stream = logging.StreamHandler(sys.stderr)
            self._stream.setFormatter(logging.Formatter("%(asctime)s serbench: %(message)s", "%H:%M:%S"))
            log.addHandler(self._stream)
        self._file: logging.Handler | None = None

    def log_to(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = logging.FileHandler(path, encoding="utf-8")
        self._file.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(self._file)

    def close(self) -> None:
        for handler in (self._stream, self._file):
            if handler is not None:
                log.removeHandler(handler)
                handler.close()

    def info(self, message: str) -> None:
        log.info(message)
        if self._progress is not None:
            self._progress.console.print(f"[dim]{message}[/dim]")

    @contextmanager
    def session(self) -> Iterator[None]:
        if not self.interactive:
            yield
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=True) as progress:
            self._progress = progress
            try:
                yield
            finally:
                self._progress = None

    @contextmanager
    def task(self, description: str, total: int, announce: bool = True) -> Iterator[Callable[[int], None]]:
        """A bar on a terminal (and a log line when ``announce``); yields ``advance(n)``."""
        if announce:
            log.info(f"{description}: {total} to do")
        if self._progress is None:
            yield lambda n=1: None
            return
        task_id = self._progress.add_task(description, total=total)
        try:
            yield lambda n=1: self._progress.advance(task_id, n)
        finally:
            self._progress.remove_task(task_id)


@contextmanager
def steps(description: str, total: int, console: Console | None = None) -> Iterator[Callable[[int], None]]:
    """Progress of long work a plugin does before a run's bars exist (a corpus generated or
    unpacked on first use, ~25 s): a bar on a terminal; nothing under ``--quiet`` or when
    stderr is not a terminal (a log line there would stand before a refusal that follows, whose
    contract is one error line). Yields ``advance(n)``."""
    console = console or Console(stderr=True)
    if _QUIET["quiet"] or not console.is_terminal:
        yield lambda n=1: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    progress = Progress(*columns, console=console, transient=True)
    try:
        progress.start()
    except LiveError:  # a run's bars are already on this console: their log line says enough
        yield lambda n=1: None
        return
    try:
        task_id = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task_id, n)
    finally:
        progress.stop()
