"""The README's reference tables are generated from the code; this fails when one drifts."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from serbench.api.errors import SerbenchError

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TOOL = ROOT / "tools" / "docs.py"
# tools/ is a maintainer's folder, not a package: the generator is loaded from its file
_spec = importlib.util.spec_from_file_location("serbench_tools_docs", TOOL)
docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(docs)
SECTIONS, render = docs.SECTIONS, docs.render


def test_the_readme_tables_are_current():
    text = README.read_text(encoding="utf-8")
    assert render(text) == text, "README.md's generated tables are stale: run `python tools/docs.py`"


def test_a_change_in_the_code_shows_in_its_table(monkeypatch):
    from serbench.run import trainer

    text = README.read_text(encoding="utf-8")
    assert "`train.batch_size` | int | `32` | >= 1 |" in text
    changed = tuple(p if p.name != "batch_size" else p.__class__(**{**p.__dict__, "default": 64})
                    for p in trainer.TRAIN_PARAMS)
    monkeypatch.setattr(trainer, "TRAIN_PARAMS", changed)
    assert "`train.batch_size` | int | `64` | >= 1 |" in render(text)
    for name in SECTIONS:  # every section is in the README
        assert f"<!-- generated: {name} -->" in text


def test_a_missing_section_is_refused():
    with pytest.raises(SerbenchError, match=r"missing"):
        render("no sections here")


def test_the_tool_checks_the_readme(tmp_path):
    """``python tools/docs.py --check`` as a maintainer runs it: current README passes, a
    stale copy fails with the section named, and a rebuild makes the copy current again."""
    checked = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    stale = tmp_path / "README.md"
    stale.write_text(README.read_text(encoding="utf-8").replace("`train.batch_size` | int | `32`", "`train.batch_size` | int | `31`"),
                     encoding="utf-8")
    checked = subprocess.run([sys.executable, str(TOOL), "--check", "--readme", str(stale)], capture_output=True, text=True)
    assert checked.returncode == 1 and "options" in checked.stdout
    rebuilt = subprocess.run([sys.executable, str(TOOL), "--readme", str(stale)], capture_output=True, text=True)
    assert rebuilt.returncode == 0 and stale.read_text(encoding="utf-8") == README.read_text(encoding="utf-8")


def test_the_plugin_api_page_is_current():
    assert docs.PAGE.read_text(encoding="utf-8") == docs.plugin_api(), "docs/plugin-api.md is stale: run `python tools/docs.py`"


def test_the_plugin_api_page_shows_every_contract_and_follows_its_docstrings(monkeypatch):
    """Each contract class of serbench.api has its section, with its docstring as written there;
    an edited docstring shows on the page (so the page cannot drift from the code)."""
    import serbench.api
    from serbench.api.pooling import Pooling

    page = docs.plugin_api()
    for name in ("Upstream", "Pooling", "Loss", "Downstream", "DownstreamContext", "Batch", "Protocol", "Fold",
                 "Utterance", "Stage", "StageInput", "Executor", "WorkUnit", "Spec", "Param"):
        cls = getattr(serbench.api, name)
        assert f"### `{name}`" in page and " ".join(cls.__doc__.split()[:12]) in " ".join(page.split()), name
    monkeypatch.setattr(Pooling, "__doc__", "A changed contract.")
    assert "A changed contract." in docs.plugin_api() and "A changed contract." not in page
