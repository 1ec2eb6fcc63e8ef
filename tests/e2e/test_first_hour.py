"""The first hour of a new user (issue 26, item 6): each friction point, tried as typed.

A spec with ``version=1``; a leaderboard site without matplotlib; the LaTeX table; outputs that
landed in the current directory; ``--baseline`` given twice; silent corpus generation; 96-dpi
figures; fractional epoch ticks; the README's run id; a dry run without the corpora.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
SUITE = """name = "firsthour"
version = "1"
seeds = [0]

[[matrix]]
protocols = ["synthetic"]
upstreams = ["fbank"]
downstreams = ["superb"]
recipe = "shared"
overrides = ["protocol.per_class=2", "train.max_epochs=3"]

[[matrix]]
protocols = ["synthetic"]
upstreams = ["fbank"]
downstreams = ["superb"]
pooling = "std"
recipe = "shared"
overrides = ["protocol.per_class=2", "train.max_epochs=3"]
"""


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """Two finished runs, made by ``serbench bench`` from a folder holding only the suite."""
    home = tmp_path_factory.mktemp("firsthour")
    (home / "suite.toml").write_text(SUITE)
    done = run_cli("bench", "suite.toml", "--out", "myruns", cwd=home)
    assert done.returncode == 0, done.stderr
    runs = sorted(p for p in (home / "myruns").iterdir() if (p / "result.json").exists())
    assert len(runs) == 2
    return home, runs


# --- outputs go under the folder the user chose ------------------------------------------------

def test_bench_writes_its_table_beside_the_runs_not_into_the_current_folder(bench):
    home, runs = bench
    assert sorted(p.name for p in home.iterdir()) == ["myruns", "suite.toml"]  # nothing else in the cwd
    table = (home / "myruns" / "leaderboards" / "firsthour.md").read_text()
    assert all(r.name in table for r in runs)


def test_compare_with_baseline_alone_writes_beside_the_runs(bench, tmp_path):
    home, (a, b) = bench
    done = run_cli("compare", "--baseline", str(a), str(b), cwd=tmp_path)  # the baseline named once
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing in the current directory
    (written,) = (home / "myruns").glob("compare-*.json")
    assert str(written) in " ".join(done.stdout.split())
    data = json.loads(written.read_text())
    ((row),) = data["comparisons"]  # b against the baseline a: one comparison, as with a repeated
    assert (row["a_id"], row["b_id"]) == (b.name, a.name)
    repeated = run_cli("compare", "--baseline", str(a), str(a), str(b), "--json", str(tmp_path / "c.json"))
    assert repeated.returncode == 0, repeated.stderr
    assert json.loads((tmp_path / "c.json").read_text())["comparisons"] == data["comparisons"]
    alone = run_cli("compare", "--baseline", str(a))
    assert alone.returncode == 2 and "at least two run directories" in alone.stderr


# --- a Spec field of the wrong type ------------------------------------------------------------

INT_VERSION = """
from serbench.api.hookspecs import hookimpl
from serbench.api.specs import Spec

@hookimpl
def register_poolings():
    return [Spec(name="intver", factory=lambda dim: None, summary="a pooling", version=1)]
"""


def test_an_int_version_is_named_in_one_line_and_the_rest_still_lists(tmp_path):
    (tmp_path / "intver_plugin.py").write_text(INT_VERSION)
    info = tmp_path / "intver_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: intver_plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[serbench]\nintver_plugin = intver_plugin\n")
    done = run_cli("list", "poolings", env={"PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "mean" in done.stdout and "intver" not in done.stdout  # skipped, the others listed
    (line,) = [line for line in done.stderr.splitlines() if "intver" in line]
    assert "'intver_plugin'" in line and "version=1" in line and "int, expected str" in line
    assert "Traceback" not in done.stderr


# --- the site without the plot extra, and never half a site ----------------------------------

WITHOUT_MATPLOTLIB = ("import sys; sys.modules['matplotlib'] = None; from serbench.cli.main import main; "
                      "sys.exit(main(sys.argv[1:]))")


def test_the_site_without_matplotlib_omits_figures_and_keeps_the_markdown(bench, tmp_path):
    _, runs = bench
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "notes.txt").write_text("mine")  # a file of the user's in the site's folder
    done = subprocess.run([sys.executable, "-c", WITHOUT_MATPLOTLIB, "leaderboard", *map(str, runs),
                           "--html", str(tmp_path / "site"), "-o", str(tmp_path / "board.md")],
                          capture_output=True, text=True, env=os.environ)
    assert done.returncode == 0, done.stderr
    assert "matplotlib is not installed" in done.stderr
    assert all(r.name in (tmp_path / "board.md").read_text() for r in runs)
    index = (tmp_path / "site" / "index.html").read_text()
    assert "Figures omitted" in index and "<img" not in index
    for r in runs:
        page = (tmp_path / "site" / "runs" / r.name / "index.html").read_text()
        assert "Figures omitted" in page and "<img" not in page
        assert (tmp_path / "site" / "runs" / r.name / "result.json").read_bytes() == (r / "result.json").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["board.md", "site"]  # no staging folder left
    assert (tmp_path / "site" / "notes.txt").read_text() == "mine"  # the site's files merged in, nothing removed


def test_a_failing_site_build_leaves_the_earlier_site_as_it_was(bench, tmp_path, monkeypatch):
    from serbench.report import site
    from serbench.report.results import load_result
    from serbench.run.registry import registry

    _, runs = bench
    target = tmp_path / "site"
    target.mkdir()
    (target / "index.html").write_text("the earlier site")
    calls = []

    def fail_on_second(*args, **kwargs):  # a fault injected half way through the pages
        calls.append(args)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(*args, **kwargs)

    original = site._run_page
    monkeypatch.setattr(site, "_run_page", fail_on_second)
    with pytest.raises(OSError, match="disk full"):
        site.build([load_result(r) for r in runs], target, registry())
    assert [p.name for p in tmp_path.iterdir()] == ["site"]
    assert [p.name for p in target.iterdir()] == ["index.html"]
    assert (target / "index.html").read_text() == "the earlier site"


# --- LaTeX --------------------------------------------------------------------------------------

ESCAPES = {r"\textbackslash{}": "\\", r"\textasciitilde{}": "~", r"\textasciicircum{}": "^", r"\textless{}": "<",
           r"\textgreater{}": ">", r"\textbar{}": "|", r"$\pm$": "±", r"\&": "&", r"\%": "%", r"\$": "$",
           r"\#": "#", r"\_": "_", r"\{": "{", r"\}": "}"}
TOKEN = re.compile("|".join(re.escape(k) for k in sorted(ESCAPES, key=len, reverse=True)))


def _decode_cell(text: str) -> str:
    """A table cell as LaTeX prints it, read without LaTeX: every escape replaced by its
    character; a special character left unescaped (it would be a LaTeX command, a column
    separator, math mode or a comment) fails the test."""
    bare = TOKEN.sub("", text)
    unescaped = [c for c in "\\&%$#_{}~^<>|" if c in bare]
    assert not unescaped, f"unescaped {unescaped} in {text!r}"
    return TOKEN.sub(lambda m: ESCAPES[m.group()], text)


def test_every_latex_special_character_is_escaped_exactly_once():
    from serbench.report.leaderboard import latex_text

    nasty = "a\\b&c%d$e#f_g{h}i~j^k<l>m|n±o 50% \\% {}"
    assert _decode_cell(latex_text(nasty)) == nasty
    assert latex_text("UA (%)") == r"UA (\%)"  # not \\% (a line break, then a comment)


def _tabular_rows(tex: str) -> tuple[str, list[list[str]]]:
    spec = re.search(r"\\begin\{tabular\}\{([lr]+)\}", tex).group(1)
    body = tex.split(r"\midrule", 1)[1].split(r"\bottomrule", 1)[0]
    header = tex.split(r"\toprule", 1)[1].split(r"\midrule", 1)[0]
    lines = [header] + [line for line in body.splitlines() if line.strip() and not line.startswith("%")]
    rows = []
    for line in lines:
        line = line.strip()
        assert line.endswith(r" \\"), line
        rows.append(re.split(r"(?<!\\) & ", line[:-3]))
    return spec, rows


def test_the_latex_table_through_the_cli(bench, tmp_path):
    _, runs = bench
    done = run_cli("leaderboard", *map(str, runs), "--latex", str(tmp_path / "t.tex"))
    assert done.returncode == 0, done.stderr
    tex = (tmp_path / "t.tex").read_text()
    assert "\\\\%" not in tex  # an escaped backslash before % would end the row and comment out the rest
    braces = tex.replace("\\{", "").replace("\\}", "")
    assert braces.count("{") == braces.count("}")
    spec, rows = _tabular_rows(tex)
    assert all(len(row) == len(spec) for row in rows)  # every row fills the columns declared
    assert len(spec) <= 9
    header = [_decode_cell(c) for c in rows[0]]
    # the suite's runs changed defaults (per_class, max_epochs): the settings column says so
    # the synthetic corpus knows each speaker's gender: the fairness column (issue 25) closes the row
    assert header == ["method", "encoder", "pooling", "settings", "seeds", "UA (%)", "WA (%)", "macro-F1 (%)",
                      "UA F - M (fairness)"]
    by_pooling = {row[2]: [_decode_cell(c) for c in row] for row in rows[1:]}
    for r in runs:
        result = json.loads((r / "result.json").read_text())
        cells = by_pooling[result["config"]["pooling"]]
        assert "protocol.per_class=2" in cells[3] and cells[4] == "1"
        mean, half = (float(x) for x in cells[5].split(" ± "))
        ua = result["summary"]["ua"]
        assert mean == pytest.approx(ua["mean"] * 100, abs=0.006)
        assert half == pytest.approx((ua["ci95"][1] - ua["ci95"][0]) * 50, abs=0.006)
        assert f"% run {r.name}:" in tex  # each row traceable to its run


# --- figures ------------------------------------------------------------------------------------

def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_png_figures_at_print_resolution_and_pdf_on_request(bench):
    pytest.importorskip("matplotlib", reason="figures need pip install 'serbench[plot]'")
    _, runs = bench
    done = run_cli("plot", str(runs[0]), "--format", "png,pdf")
    assert done.returncode == 0, done.stderr
    width, height = _png_size(runs[0] / "figures" / "curves.png")  # drawn 5.5 x 3.0 inches
    assert width / 5.5 >= 200 and height / 3.0 >= 200
    assert (runs[0] / "figures" / "curves.pdf").read_bytes()[:5] == b"%PDF-"


def test_learning_curves_tick_whole_epochs():
    pytest.importorskip("matplotlib", reason="figures need pip install 'serbench[plot]'")
    from serbench.report.plots import _curves, _pyplot

    plt = _pyplot()
    records = [{"fold": "1", "seed": 0, "dev_history": [0.3, 0.5, 0.45], "best_epoch": 2}]
    figure = _curves(plt, None, records)
    figure.canvas.draw()
    ticks = [t for t in figure.axes[0].get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)
    plt.close(figure)


# --- progress while the corpus is generated ----------------------------------------------------

def test_corpus_generation_shows_a_bar_on_a_terminal_and_nothing_when_quiet():
    from rich.console import Console

    from serbench.api.progress import Reporter, steps

    def shown(quiet: bool) -> str:
        Reporter(quiet=quiet).close()
        sink = io.StringIO()
        with steps("generating the corpus", 4, console=Console(file=sink, force_terminal=True)) as advance:
            for _ in range(4):
                advance(1)
        return sink.getvalue()

    assert "generating the corpus" in shown(quiet=False) and "4/4" in shown(quiet=False)
    assert shown(quiet=True) == ""
    sink = io.StringIO()
    Reporter(quiet=False).close()
    with steps("generating the corpus", 4, console=Console(file=sink, force_terminal=False)) as advance:
        advance(4)
    assert sink.getvalue() == ""  # no bar in a pipe or a log file


def test_a_new_synthetic_corpus_shows_progress_on_a_terminal(tmp_path):
    import pty

    primary, secondary = pty.openpty()
    env = {**os.environ, "SERBENCH_CACHE": str(tmp_path / "cache"), "COLUMNS": "120"}
    process = subprocess.Popen([sys.executable, "-m", "serbench", "splits", "synthetic", "-o", "protocol.per_class=1",
                                "--out", str(tmp_path / "splits.jsonl")], stdout=secondary, stderr=secondary, env=env)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait() == 0
    shown = b"".join(chunks).decode(errors="replace")
    assert "generating the synthetic corpus (1 per class, seed 0)" in shown and "40/40" in shown


# --- the README's example ---------------------------------------------------------------------

def test_the_readme_shows_the_run_id_its_command_prints():
    from serbench.run.plan import plan
    from serbench.run.request import RunRequest

    readme = (ROOT / "README.md").read_text()
    command = re.search(r"serbench run (--upstream \S+ --downstream \S+ --protocol \S+)\n", readme).group(1)
    args = dict(zip(command.split()[::2], command.split()[1::2]))
    expected = plan(RunRequest(args["--upstream"], args["--downstream"], protocol=args["--protocol"])).run_id
    shown = set(re.findall(r"synthetic_fbank_superb_[0-9a-f]{10}", readme.split("## The command line")[0]))
    assert shown == {expected}


# --- a dry run without the corpora ------------------------------------------------------------

def test_dry_run_of_the_paper_suite_without_the_corpora_lists_every_cell(tmp_path):
    done = run_cli("bench", str(ROOT / "benchmarks" / "seed-papers.toml"), "--dry-run", "--out", str(tmp_path / "runs"))
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    for cell in ("iemocap_loso10 / wavlm_large / sap_gap", "msp_podcast / wavlm_large / wavlm_cond",
                 "iemocap_5fold / hubert_large / wap_la", "iemocap_5fold / hubert_base / gmp_atl"):
        assert cell in text
    # jobs from the published splits: 10 speakers, one MSP-Podcast test set, 5 sessions twice; one seed
    assert f"4 cells, {10 + 1 + 5 + 5} jobs" in text
    assert text.count("unknown: needs the iemocap corpus") == 3 and "unknown: needs the msp_podcast corpus" in text
    assert "feature cache: unknown" in text
    assert "serbench config set data.iemocap PATH" in text and "serbench config set data.msp_podcast PATH" in text
    assert not (tmp_path / "runs").exists()
