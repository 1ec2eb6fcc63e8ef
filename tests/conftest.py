"""Test isolation: a private serbench cache and config for the whole session; the ``e2e``
marker's switch (end-to-end tests are left out unless ``--e2e`` or a ``-m`` expression asks)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serbench-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SERBENCH_CACHE", str(root / "cache"))
        mp.setenv("SERBENCH_CONFIG", str(root / "config.json"))
        for key in [k for k in os.environ if k.startswith("SERBENCH_DATA_")]:
            mp.delenv(key)
        yield root


_RUNNING: dict[str, pytest.Item | None] = {"item": None}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _RUNNING["item"] = item  # before the item's fixtures, so a module fixture sees the test that needs it


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The installed command, as a user runs it (no terminal: plain log lines). Only an e2e test
    may: a subprocess costs seconds, and the default run stays fast only if they are marked."""
    item = _RUNNING["item"]
    if item is not None and not item.get_closest_marker("e2e"):
        raise AssertionError(f"{item.nodeid} runs the CLI in a subprocess: mark it @pytest.mark.e2e "
                             "(or move it to tests/e2e/)")
    return subprocess.run(
        [sys.executable, "-m", "serbench", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


@pytest.fixture
def stage_feed(monkeypatch) -> list[dict]:
    """Records, for every (fold, seed) job, the utterance ids each stage was fed."""
    from serbench.run import stages

    fed: list[dict] = []
    original = stages.run_stages

    def spy(*args, **kwargs):
        seen = original(*args, **kwargs)
        fed.append(seen)
        return seen

    monkeypatch.setattr(stages, "run_stages", spy)
    return fed


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--e2e", action="store_true",
                     help="also run the tests marked e2e (subprocess CLI runs, pools, Ray, submitit, the browser, "
                          "long trainings): what CI runs")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the e2e tests out of a plain ``pytest`` so a developer can run it often; ``--e2e``
    keeps them, and so does any ``-m`` expression (``-m e2e`` runs only them). Every test in
    the ``e2e/`` folder beside this file is e2e without saying so, and so is one marked ``slow``."""
    e2e_folder = Path(__file__).resolve().parent / "e2e"
    for item in items:
        if e2e_folder in item.path.resolve().parents or item.get_closest_marker("slow"):  # slow: e2e's older name
            item.add_marker(pytest.mark.e2e)
    if config.getoption("--e2e") or config.option.markexpr:
        return
    e2e = [item for item in items if item.get_closest_marker("e2e")]
    if e2e:
        config.hook.pytest_deselected(items=e2e)
        items[:] = [item for item in items if not item.get_closest_marker("e2e")]
