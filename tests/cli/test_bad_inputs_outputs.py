"""Issue 22's bad inputs for what reads finished runs: compare, plot, finish, leaderboard (markdown,
CSV, LaTeX, site). Each case runs the command as a user types it on a copy of a real finished run
with one file edited, truncated or replaced, and must exit 2 with one line naming the culprit and
change no file anywhere (the table of tests/cli/test_bad_inputs.py, grown). Then a hostile result.json
(run id ``../../x``, names with ``/``, ``..``, NUL, thousands of characters) goes through every
output command, which must write inside its output folder only; and CSV exports are checked to
open in a spreadsheet as text, never as formulas."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from test_bad_inputs import SYNTHETIC, _snapshot, refused_in_one_line

from serbench.cli.main import main


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """One real finished run: 5 folds of the synthetic corpus, one epoch."""
    out = tmp_path_factory.mktemp("finished")
    assert main([*SYNTHETIC, "--out", str(out), "--quiet"]) == 0
    (run,) = out.iterdir()
    return run


def _copy(run: Path, root: Path, name: str = "a") -> Path:
    """A copy of the run under ``root/name`` (its folder keeps the run id, as finish expects)."""
    return Path(shutil.copytree(run, root / name / run.name))


def _edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _older(run: Path) -> None:
    """The result as written before results recorded their predictions' sha256: the reader
    checks the table itself."""
    _edit_json(run / "result.json", lambda data: data.pop("predictions_sha256", None))


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def _truncated_mid_row(path: Path) -> None:
    """Cut the file inside its last row, just after the utterance id: a copy stopped part way."""
    text = path.read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    cut = len(text.rstrip("\n")) - len(last) + len(",".join(last.split(",")[:3]))
    path.write_text(text[:cut])


BINARY = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8  # an image saved over the file


def _compare(edit: Callable[[Path], None], older: bool = False) -> Callable[[Path, Path], list[str]]:
    """``serbench compare A B`` where A's copy is edited by ``edit`` (``older``: a result without
    the predictions checksum)."""
    def make(root: Path, run: Path) -> list[str]:
        a, b = _copy(run, root, "a"), _copy(run, root, "b")
        if older:
            _older(a)
        edit(a)
        return ["compare", str(a), str(b), "--json", str(root / "out" / "compare.json")]
    return make


def _command(command: str, edit: Callable[[Path], None], *extra: str) -> Callable[[Path, Path], list[str]]:
    """``serbench COMMAND RUN_DIR`` on an edited copy of the run."""
    def make(root: Path, run: Path) -> list[str]:
        copy = _copy(run, root)
        edit(copy)
        return [command, str(copy), *[e.replace("ROOT", str(root)) for e in extra]]
    return make


def _result(change: Callable[[dict], None]) -> Callable[[Path], None]:
    return lambda run: _edit_json(run / "result.json", change)


def _summary(metric: str, key: str | None, value) -> Callable[[Path], None]:
    def change(data: dict) -> None:
        if key is None:
            data["summary"][metric] = value
        else:
            data["summary"][metric][key] = value
    return _result(change)


def _not_results(root: Path, run: Path) -> list[str]:
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not a run")
    return ["leaderboard", str(root / "notes")]


def _symlink_loop(root: Path, run: Path) -> list[str]:
    os.symlink(root / "loop-b", root / "loop-a")
    os.symlink(root / "loop-a", root / "loop-b")
    return ["leaderboard", str(root / "loop-a")]


def _fifo(root: Path, run: Path) -> list[str]:
    (root / "r").mkdir()
    os.mkfifo(root / "r" / "result.json")  # read, it would wait forever for a writer
    return ["leaderboard", str(root / "r")]


PREDICTIONS = "predictions.csv"
JOB_CSV = "folds/fold-1_seed-0.csv"
JOB_JSON = "folds/fold-1_seed-0.json"

CASES: dict[str, tuple[Callable[[Path, Path], list[str]], str]] = {
    # compare: the run's predictions.csv, checked against the sha256 in its result.json
    "compare: a column renamed": (_compare(lambda r: _replace(r / PREDICTIONS, ",prediction,", ",pred,")),
                                  r"a/.*/predictions\.csv: edited since serbench wrote it"),
    "compare: truncated mid-row": (_compare(lambda r: _truncated_mid_row(r / PREDICTIONS)),
                                   r"a/.*/predictions\.csv: edited since serbench wrote it"),
    # compare, a result from before predictions carried a checksum: the table itself is checked
    "compare (older result): a column renamed": (
        _compare(lambda r: _replace(r / PREDICTIONS, ",prediction,", ",pred,"), older=True),
        r"a/.*/predictions\.csv: no 'prediction' column"),
    "compare (older result): a class not the run's": (
        _compare(lambda r: _replace(r / PREDICTIONS, ",angry,", ",furious,"), older=True),
        r"a/.*/predictions\.csv: class 'furious' is not one of result\.json's classes"),
    "compare (older result): a seed that is a word": (
        _compare(lambda r: _replace(r / PREDICTIONS, "\n1,0,", "\n1,zero,"), older=True),
        r"a/.*/predictions\.csv:2: seed 'zero' is not an integer"),
    "compare (older result): truncated mid-row": (
        _compare(lambda r: _truncated_mid_row(r / PREDICTIONS), older=True),
        r"a/.*/predictions\.csv(:41: empty speaker|: class nan is not one of)"),
    "compare (older result): binary": (_compare(lambda r: (r / PREDICTIONS).write_bytes(BINARY), older=True),
                                       r"a/.*/predictions\.csv: not a predictions table"),
    "compare: result.json not JSON": (_compare(lambda r: (r / "result.json").write_text('{"schema": ')),
                                      r"a/.*/result\.json:1: not valid JSON"),
    "compare: summary of the wrong type": (_compare(_summary("ua", None, "high")),
                                           r"a/.*/result\.json: summary\.ua is 'high', not a mapping"),
    # plot: the job files it reads, and the result's fold records
    "plot: a job's predictions edited": (_command("plot", lambda r: _replace(r / JOB_CSV, "\n1,0,", "\n1,x,")),
                                         r"fold-1_seed-0\.csv: edited since its job wrote it"),
    "plot: a job's record truncated": (_command("plot", lambda r: (r / JOB_JSON).write_text('{"fold": "1", "se')),
                                       r"fold-1_seed-0\.json: not a job record"),
    "plot: a job's record replaced by binary": (_command("plot", lambda r: (r / JOB_JSON).write_bytes(BINARY)),
                                                r"fold-1_seed-0\.json: not a job record"),
    "plot: folds not a list": (_command("plot", _result(lambda d: d.update(folds="all"))),
                               r"result\.json: folds is 'all', not a list of fold records"),
    "plot: a fold name that is a path": (_command("plot", _result(lambda d: d["folds"][0].update(fold="../../../etc"))),
                                         r"result\.json: folds\[0\]\.fold '\.\./\.\./\.\./etc' cannot name a file"),
    "plot: a fold record without metrics": (_command("plot", _result(lambda d: d["folds"][1].pop("metrics"))),
                                            r"result\.json: folds\[1\]\.metrics is None"),
    "plot: no folds": (_command("plot", _result(lambda d: d.pop("folds"))), r"result\.json: no folds"),
    "plot: a seed that is a word": (_command("plot", _result(lambda d: d["folds"][0].update(seed="zero"))),
                                    r"result\.json: folds\[0\]\.seed is 'zero', not an integer"),
    "plot: a confusion matrix of the wrong shape": (
        _command("plot", _result(lambda d: d["overall"]["confusion"].update(counts=[[1, 2], [3, 4]]))),
        r"result\.json: overall\.confusion\.counts is not a 4 x 4 table"),
    # finish: a run's job files, summarised again
    "finish: a job's predictions edited": (_command("finish", lambda r: _replace(r / JOB_CSV, ",angry,", ",furious,")),
                                           r"fold-1_seed-0\.csv: edited since its job wrote it"),
    "finish: a job's predictions truncated mid-row": (_command("finish", lambda r: _truncated_mid_row(r / JOB_CSV)),
                                                      r"fold-1_seed-0\.csv: edited since its job wrote it"),
    "finish: a job's predictions binary": (_command("finish", lambda r: (r / JOB_CSV).write_bytes(BINARY)),
                                           r"fold-1_seed-0\.csv: edited since its job wrote it"),
    "finish: a job's record edited": (_command("finish", lambda r: _replace(r / JOB_JSON, '"n_test": 8', '"n_test": 9')),
                                      r"fold-1_seed-0\.json: edited since its job wrote it"),
    # leaderboard over odd files
    "leaderboard: a folder of non-results": (_not_results, r"none of the 1 folders given has a result\.json \(first: .*notes"),
    "leaderboard: an empty result.json": (_command("leaderboard", lambda r: (r / "result.json").write_text("")),
                                          r"result\.json:1: not valid JSON"),
    "leaderboard: a symlink loop": (_symlink_loop, r"loop-a: a symbolic link that leads to no file"),
    "leaderboard: result.json is a FIFO": (_fifo, r"r/result\.json: not a regular file"),
    "leaderboard: summary of the wrong type": (_command("leaderboard", _summary("wa", None, [0.5])),
                                               r"result\.json: summary\.wa is \[0\.5\], not a mapping"),
    "leaderboard: speakers a list": (_command("leaderboard", _summary("ua", "speakers", [10])),
                                     r"result\.json: summary\.ua\.speakers is \[10\], not a number of speakers"),
    "leaderboard: interval reason a number": (_command("leaderboard", _summary("ua", "cluster", {"reason": 3})),
                                              r"result\.json: summary\.ua\.cluster\.reason is 3, not text"),
    "leaderboard: seeds a word": (_command("leaderboard", _result(lambda d: d["config"].update(seeds="all"))),
                                  r"result\.json: config\.seeds is 'all', not a list of seeds"),
    "leaderboard: a seed a word": (_command("leaderboard", _result(lambda d: d["config"].update(seeds=["x"]))),
                                   r"result\.json: config\.seeds holds 'x', not an integer seed"),
    "leaderboard: run_id a number": (_command("leaderboard", _result(lambda d: d.update(run_id=7))),
                                     r"result\.json: run_id is 7, not a run's name"),
    "leaderboard: recipe a word": (_command("leaderboard", _result(lambda d: d["config"].update(recipe="paper"))),
                                   r"result\.json: config\.recipe is 'paper', not a mapping"),
    "leaderboard: overrides not sections": (
        _command("leaderboard", _result(lambda d: d["config"].update(overrides={"train": 3}))),
        r"result\.json: config\.overrides\.train is 3, not a mapping"),
    "leaderboard: plugins a list": (_command("leaderboard", _result(lambda d: d.update(plugins=["superb"]))),
                                    r"result\.json: plugins is \['superb'\], not a mapping of plugin names to versions"),
    "leaderboard: classes not names": (_command("leaderboard", _result(lambda d: d.update(classes=[1, 2]))),
                                       r"result\.json: classes is \[1, 2\], not a list of class names"),
    "leaderboard: speakers record a word": (_command("leaderboard", _result(lambda d: d.update(speakers="known"))),
                                            r"result\.json: speakers is 'known', not a mapping"),
    "leaderboard --csv: a comparability of the wrong type": (
        _command("leaderboard", _result(lambda d: d.update(comparability="synthetic")), "--csv", "ROOT/out/t.csv"),
        r"result\.json: comparability must hold protocol"),
    "leaderboard --latex: main metric unknown": (
        _command("leaderboard", _result(lambda d: d.update(main_metric="accuracy")), "--latex", "ROOT/out/t.tex"),
        r"result\.json: main_metric is 'accuracy', not one of ua, wa, macro_f1"),
    # the site: nothing is written before every result is checked
    "leaderboard --html: predictions edited": (
        _command("leaderboard", lambda r: _replace(r / PREDICTIONS, ",angry,", ",sad,"), "--html", "ROOT/out/site"),
        r"a/.*/predictions\.csv: edited since serbench wrote it"),
    "leaderboard --csv --html: predictions edited, so no CSV either": (
        _command("leaderboard", lambda r: _replace(r / PREDICTIONS, ",angry,", ",sad,"), "--csv", "ROOT/out/t.csv",
                 "--html", "ROOT/out/site"),
        r"a/.*/predictions\.csv: edited since serbench wrote it"),
    "leaderboard --html: predictions missing": (
        _command("leaderboard", lambda r: (r / PREDICTIONS).unlink(), "--html", "ROOT/out/site"),
        r"a/.*: no predictions\.csv"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_output_input_gets_one_line_exit_2_and_nothing_written(case, finished, tmp_path, capsys):
    make, message = CASES[case]
    given = tmp_path / "given"
    given.mkdir()
    argv = make(given, finished)
    before = _snapshot(tmp_path)
    refused_in_one_line(argv, message, capsys, case)
    after = _snapshot(tmp_path)
    changed = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    # nothing given was changed, nothing written anywhere; finish works in its run folder, whose log notes the refusal
    assert changed <= ({name for name in after if name.endswith("/run.log")} if argv[0] == "finish" else set()), changed
    assert not (given / "out").exists()


# -- a hostile result.json through every output command ---------------------------------------

LONG = "L" * 5000
HOSTILE_NAMES = {"run_id": "../../x", "downstream": "a/../../b", "upstream": "..", "pooling": "p\x00q/../r", "loss": LONG}


def _hostile(run: Path, root: Path, name: str, names: dict) -> Path:
    """A copy of the run whose result.json names things as ``names`` says (its predictions are
    untouched, so their checksum still holds)."""
    copy = _copy(run, root, name)

    def change(data: dict) -> None:
        data["run_id"] = names["run_id"]
        data["config"].update({k: v for k, v in names.items() if k != "run_id"})
        data["config"]["recipe"] = {"name": "../../recipe/\x00"}
        data["config"]["overrides"] = {"../../s": {"k/..": "../../v"}}
        data["plugins"] = {**data["plugins"], "../../plugin": "1", LONG: "2"}
    _edit_json(copy / "result.json", change)
    return copy


def _changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}


def test_a_hostile_result_writes_only_inside_the_output_folders(finished, tmp_path, capsys):
    """Run ids, plugin and system names read from a result are never paths: leaderboard (markdown,
    CSV, LaTeX, site), plot and compare write inside the folder each was given and nowhere else."""
    pytest.importorskip("matplotlib", reason="plot and the site need pip install 'serbench[plot]'")
    given = tmp_path / "deep" / "er" / "given"
    a = _hostile(finished, given, "a", HOSTILE_NAMES)
    b = _hostile(finished, given, "b", HOSTILE_NAMES)  # the same run id twice: two site folders, not one
    out = tmp_path / "deep" / "er" / "out"
    commands = [["leaderboard", str(a), str(b), "-o", str(out / "board.md")],
                ["leaderboard", str(a), str(b), "--csv", str(out / "board.csv"), "--latex", str(out / "board.tex")],
                ["leaderboard", str(a), str(b), "--html", str(out / "site")],
                ["compare", str(a), str(b), "--json", str(out / "compare.json")],
                ["plot", str(a)]]
    before = _snapshot(tmp_path)
    for argv in commands:
        assert main(argv) == 0, (argv, capsys.readouterr().err)
    changed = _changed(before, _snapshot(tmp_path))
    figures = f"{a.relative_to(tmp_path)}/figures/"
    assert changed and all(name.startswith(("deep/er/out/", figures)) for name in changed), sorted(changed)
    assert not (tmp_path / "x").exists() and not (tmp_path / "deep" / "x").exists()
    pages = sorted(p.parent.name for p in (out / "site" / "runs").glob("*/index.html"))
    assert len(pages) == 2 and pages[0] != pages[1]
    assert all(re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", page) for page in pages)
    index = (out / "site" / "index.html").read_text()
    assert all(f'href="runs/{page}/index.html"' in index for page in pages)
    assert "../../x" in (out / "board.md").read_text()  # shown as text, where it belongs
    assert len(json.loads((out / "compare.json").read_text())["comparisons"]) == 1


def test_a_symlink_in_the_site_folder_is_not_followed_out(finished, tmp_path, capsys):
    """A link planted in the output folder (``runs`` -> elsewhere) is refused, not written through."""
    pytest.importorskip("matplotlib", reason="the site needs pip install 'serbench[plot]'")
    run = _copy(finished, tmp_path / "given")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "site").mkdir()
    os.symlink(elsewhere, tmp_path / "site" / "runs")
    assert main(["leaderboard", str(run), "--html", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "outside the output folder" in err[0], err
    assert not any(elsewhere.iterdir())


def test_the_site_escapes_what_it_shows(finished, tmp_path):
    """Markup in a run id or plugin name is shown as text on the index and the run page."""
    pytest.importorskip("matplotlib", reason="the site needs pip install 'serbench[plot]'")
    names = {"run_id": "<script>alert(1)</script>", "downstream": "<img src=x onerror=alert(2)>",
             "upstream": "fbank", "pooling": "mean", "loss": "ce"}
    run = _hostile(finished, tmp_path / "given", "a", names)
    assert main(["leaderboard", str(run), "--html", str(tmp_path / "site")]) == 0
    (page,) = (tmp_path / "site" / "runs").glob("*/index.html")
    for html in ((tmp_path / "site" / "index.html").read_text(), page.read_text()):
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# -- CSV exports a spreadsheet opens -----------------------------------------------------------

def test_spreadsheet_cells_by_hand():
    """The OWASP CSV-injection rule: text beginning =, +, -, @, tab or CR gets a leading
    apostrophe; numbers, and text that is a plain number, stay as they are."""
    from serbench.report.spreadsheet import spreadsheet_safe

    expected = {"=1+1": "'=1+1", "+cmd": "'+cmd", "-x": "'-x", "@SUM(A1)": "'@SUM(A1)", "\t=1": "'\t=1", "\r=1": "'\r=1",
                "-0.5": "-0.5", "+3": "+3", "-1e-3": "-1e-3", "-.5": "-.5", "superb": "superb", "a=b": "a=b", "": "",
                "-": "'-", "-0.5x": "'-0.5x", "=": "'="}
    assert {text: spreadsheet_safe(text) for text in expected} == expected
    assert [spreadsheet_safe(v) for v in (-0.5, 3, None)] == [-0.5, 3, None]


def test_leaderboard_csv_cells_open_as_text(finished, tmp_path):
    names = {"run_id": '=HYPERLINK("http://x","y")', "downstream": "@SUM(A1)", "upstream": "+cmd", "pooling": "-2+3",
             "loss": "\t=1"}
    run = _hostile(finished, tmp_path / "given", "a", names)
    assert main(["leaderboard", str(run), "--csv", str(tmp_path / "t.csv")]) == 0
    (row,) = csv.DictReader(io.StringIO((tmp_path / "t.csv").read_text(), newline=""))
    assert row["run"] == "'" + names["run_id"]
    assert [row[k] for k in ("downstream", "upstream", "pooling", "loss")] == ["'@SUM(A1)", "'+cmd", "'-2+3", "'\t=1"]
    data = json.loads((run / "result.json").read_text())
    assert float(row["ua_mean"]) == pytest.approx(data["summary"]["ua"]["mean"] * 100, abs=1e-4)  # a number, unquoted
    from serbench.report.spreadsheet import PLAIN_NUMBER  # a negative number (the female - male difference) stays a number

    assert all(not value.startswith(("=", "+", "-", "@", "\t", "\r")) or PLAIN_NUMBER.fullmatch(value)
               for value in row.values())


# -- names to file names -----------------------------------------------------------------------

def test_file_names_from_data():
    from serbench.report.safe_paths import file_name, unique_file_names

    assert file_name("synthetic_fbank_superb_7b6867ff29") == "synthetic_fbank_superb_7b6867ff29"  # a safe name stays
    hostile = ["../../x", "/etc/passwd", "..", ".", "a/b", "a\x00b", "a\\b", LONG, "", ".hidden", "x" * 65]
    names = [file_name(h) for h in hostile]
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}", name), name
    assert len(set(names)) == len(hostile)  # different names, different files
    assert unique_file_names(["r", "r", "r-2", "R"]) == ["r", "r-2", "r-2-2", "R-3"]


def test_writes_stay_inside_their_folder(tmp_path):
    from serbench.api.errors import SerbenchError
    from serbench.report.safe_paths import inside, write_text_inside

    root = tmp_path / "out"
    root.mkdir()
    assert inside(root, "a/b.txt") == (root / "a" / "b.txt").resolve()
    os.symlink(tmp_path, root / "link")
    for escape in ("../x", "/etc/passwd", "a/../../x", "link/x"):
        with pytest.raises(SerbenchError, match="outside the output folder"):
            write_text_inside(root, escape, "no")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
