"""The README's reference tables are generated from the code; this fails when one drifts."""

from __future__ import annotations

from pathlib import Path

import pytest

from serbench.docs import SECTIONS, render
from serbench.errors import SerbenchError

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_tables_are_current():
    text = README.read_text(encoding="utf-8")
    assert render(text) == text, "README.md's generated tables are stale: run `serbench docs`"


def test_a_change_in_the_code_shows_in_its_table(monkeypatch):
    from serbench import trainer

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
