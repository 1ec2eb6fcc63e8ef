"""The docs' reference tables are generated from the code (this fails when one drifts), every
docs page can be reached from the README by following links, and no relative link or anchor in
the README or docs/ points at nothing."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from serbench.api.errors import SerbenchError

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
TOOL = ROOT / "tools" / "docs.py"
# tools/ is a maintainer's folder, not a package: the generator is loaded from its file
_spec = importlib.util.spec_from_file_location("serbench_tools_docs", TOOL)
docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(docs)
PAGES, SECTIONS, render, update = docs.PAGES, docs.SECTIONS, docs.render, docs.update


@pytest.mark.parametrize("page", sorted(PAGES))
def test_the_generated_tables_are_current(page):
    text = (ROOT / page).read_text(encoding="utf-8")
    assert render(text, page, PAGES[page]) == text, f"{page}'s generated tables are stale: run `python tools/docs.py`"


def test_every_section_lives_on_exactly_one_page():
    placed = [name for names in PAGES.values() for name in names]
    assert sorted(placed) == sorted(SECTIONS)
    for page, names in PAGES.items():
        text = (ROOT / page).read_text(encoding="utf-8")
        for name in SECTIONS:
            assert (f"<!-- generated: {name} -->" in text) == (name in names), (page, name)
    assert "<!-- generated:" not in README.read_text(encoding="utf-8")


def test_a_change_in_the_code_shows_in_its_table(monkeypatch):
    from serbench.run import trainer

    text = (ROOT / "docs" / "running.md").read_text(encoding="utf-8")
    assert "`train.batch_size` | int | `32` | >= 1 |" in text
    changed = tuple(p if p.name != "batch_size" else p.__class__(**{**p.__dict__, "default": 64})
                    for p in trainer.TRAIN_PARAMS)
    monkeypatch.setattr(trainer, "TRAIN_PARAMS", changed)
    assert "`train.batch_size` | int | `64` | >= 1 |" in render(text, "docs/running.md", PAGES["docs/running.md"])


def test_a_missing_section_is_refused():
    with pytest.raises(SerbenchError, match=r"missing"):
        render("no sections here")


def test_a_section_on_the_wrong_page_is_refused():
    text = "<!-- generated: hooks -->\n<!-- end: hooks -->\n"
    assert "| `register_poolings` | pooling |" in render(text, "docs/writing-plugins.md", ("hooks",))
    with pytest.raises(SerbenchError, match=r"docs/running.md: .*\['hooks'\] belong on another page"):
        render(text, "docs/running.md", ())


def test_update_rewrites_a_stale_page_and_names_it(tmp_path):
    for page in PAGES:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_text((ROOT / page).read_text(encoding="utf-8"), encoding="utf-8")
    assert update(tmp_path, check=True) == []
    stale_page = tmp_path / "docs" / "writing-plugins.md"
    text = stale_page.read_text(encoding="utf-8")
    stale_page.write_text(re.sub(r"(<!-- generated: meta -->\n).*?(<!-- end: meta -->)", r"\1old\n\2", text, flags=re.S))
    assert update(tmp_path, check=True) == ["docs/writing-plugins.md: meta"]
    assert "old\n" in stale_page.read_text(encoding="utf-8")  # --check writes nothing
    assert update(tmp_path) == ["docs/writing-plugins.md: meta"]
    assert stale_page.read_text(encoding="utf-8") == text


@pytest.mark.e2e  # the tool in a subprocess, three times
def test_the_tool_checks_and_rebuilds_the_pages(tmp_path):
    """``python tools/docs.py [--check]`` as a maintainer runs it: the pages pass, a stale copy
    fails with the page and section named, and a rebuild makes the copy current again."""
    checked = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for page in PAGES:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / page, tmp_path / page)
    running = tmp_path / "docs" / "running.md"
    running.write_text(running.read_text(encoding="utf-8").replace("`train.batch_size` | int | `32`", "`train.batch_size` | int | `31`"),
                       encoding="utf-8")
    checked = subprocess.run([sys.executable, str(TOOL), "--check", "--root", str(tmp_path)], capture_output=True, text=True)
    assert checked.returncode == 1 and "docs/running.md: options" in checked.stdout
    rebuilt = subprocess.run([sys.executable, str(TOOL), "--root", str(tmp_path)], capture_output=True, text=True)
    assert rebuilt.returncode == 0 and running.read_text(encoding="utf-8") == (ROOT / "docs" / "running.md").read_text(encoding="utf-8")


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


# --- links -----------------------------------------------------------------------------------

_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation other than - and _ dropped, spaces
    become hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    found: set[str] = set()
    for heading in _HEADING.findall(text):
        base, n = slug(heading), 0
        while (name := base if n == 0 else f"{base}-{n}") in found:  # GitHub numbers repeats
            n += 1
        found.add(name)
    return found


def links(page: Path) -> list[str]:
    """Relative link targets of ``page`` (code blocks and inline code are not links)."""
    text = _CODE.sub("", _FENCE.sub("", page.read_text(encoding="utf-8")))
    return [t for t in _LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def broken_links(page: Path) -> list[str]:
    bad = []
    for target in links(page):
        path, _, fragment = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            bad.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            bad.append(f"{target}: no heading #{fragment} in {resolved.name}")
    return bad


def reachable(start: Path) -> set[Path]:
    seen, todo = set(), [start.resolve()]
    while todo:
        page = todo.pop()
        if page in seen or page.suffix != ".md" or not page.is_file():
            continue
        seen.add(page)
        todo += [(page.parent / t.partition("#")[0]).resolve() for t in links(page) if t.partition("#")[0]]
    return seen


def test_github_anchors_are_computed_as_github_does():
    # Anchors as github.com renders them for these headings (checked by hand).
    assert slug("Is A really better than B?") == "is-a-really-better-than-b"
    assert slug("`meta`: what a Spec may declare") == "meta-what-a-spec-may-declare"
    assert slug("Beside the papers' numbers") == "beside-the-papers-numbers"
    assert slug("Scaling out: pools, Slurm and Ray") == "scaling-out-pools-slurm-and-ray"


def test_every_docs_page_is_reachable_from_the_readme():
    pages = {p.resolve() for p in DOCS.glob("*.md")}
    assert len(pages) >= 7 and (DOCS / "index.md").is_file()
    unreached = pages - reachable(README)
    assert not unreached, f"not linked from README.md or a page it links to: {sorted(p.name for p in unreached)}"


@pytest.mark.parametrize("page", ["README.md"] + sorted(f"docs/{p.name}" for p in DOCS.glob("*.md")))
def test_every_relative_link_resolves(page):
    assert broken_links(ROOT / page) == []


def test_the_link_checker_finds_what_is_broken(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\n## Two words\n\n[ok](b.md#section-one) [ok](#two-words) "
                                   "[gone](missing.md) [bad anchor](b.md#nothing) [web](https://example.org/x) "
                                   "`[code](not-a-link.md)`\n\n```\n[fenced](also-not.md)\n```\n")
    (tmp_path / "b.md").write_text("# B\n\n## Section one\n\n[back](a.md)\n")
    (tmp_path / "c.md").write_text("# C, linked from nowhere\n")
    assert broken_links(tmp_path / "a.md") == ["missing.md: no such file", "b.md#nothing: no heading #nothing in b.md"]
    assert reachable(tmp_path / "a.md") == {(tmp_path / "a.md").resolve(), (tmp_path / "b.md").resolve()}
