"""Issue 12's reliability suite: bad inputs, table-driven. Each case runs the command as a user
types it and must exit 2 with one line naming the culprit, write nothing (a refused run leaves
no run folder), and change no file it was given."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serbench.cli.main import main

from lookalike import tiny_wav, write_iemocap

RUN = ["run", "--upstream", "fbank", "--downstream", "superb"]
SYNTHETIC = [*RUN, "--protocol", "synthetic", "-o", "protocol.per_class=1", "-o", "train.max_epochs=1"]


def _corpus(root: Path, edit: Callable[[str], str] = lambda text: text, name: str = "corpus.csv") -> str:
    """A 24-utterance, 4-class, 3-fold CSV corpus (tiny wavs), its text passed through ``edit``."""
    rows = []
    for k in range(24):
        tiny_wav(root / "wav" / f"{k}.wav", k)
        rows.append(f"wav/{k}.wav,{'abcd'[k % 4]},s{k % 6},{1 + k % 3}")
    text = edit("path,label,speaker,fold\n" + "\n".join(rows) + "\n")
    (root / name).write_bytes(text.encode("utf-8", errors="surrogateescape"))
    return str(root / name)


def _csv(edit: Callable[[str], str]) -> Callable[[Path], list[str]]:
    return lambda root: [*RUN, "--protocol", "csv", "--data", _corpus(root, edit)]


def _latin1(root: Path) -> list[str]:
    path = Path(_corpus(root))
    path.write_bytes(path.read_bytes().replace(b",a,", b",\xe9,", 1))
    return [*RUN, "--protocol", "csv", "--data", str(path)]


def _not_audio(root: Path) -> list[str]:
    (root / "bad.wav").write_text("not audio")
    return [*RUN, "--protocol", "csv", "--data", _corpus(root, lambda t: t.replace("wav/0.wav", "bad.wav"))]


def _no_samples(root: Path) -> list[str]:
    sf.write(root / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    return [*RUN, "--protocol", "csv", "--data", _corpus(root, lambda t: t.replace("wav/0.wav", "empty.wav"))]


def _iemocap_without(session_or_speaker: str, protocol: str) -> Callable[[Path], list[str]]:
    def make(root: Path) -> list[str]:
        ids = [f"Ses0{s}{g}_impro01_{g}00{k}" for s in range(1, 6) for g in "FM" for k in range(4)]
        kept = [i for i in ids if not i.startswith(session_or_speaker) and f"0{i[4]}{i[-4]}" != session_or_speaker]
        write_iemocap(root / "iemocap", [(i, ("neu", "ang", "sad", "hap")[int(i[-1])]) for i in kept])
        return [*RUN, "--protocol", protocol, "--data", str(root / "iemocap")]
    return make


def _result(content: str) -> Callable[[Path], list[str]]:
    def make(root: Path) -> list[str]:
        (root / "r").mkdir()
        (root / "r" / "result.json").write_bytes(content.encode("utf-8", errors="surrogateescape"))
        return ["leaderboard", str(root / "r")]
    return make


def _with_file(option: str) -> Callable[[Path], list[str]]:
    def make(root: Path) -> list[str]:
        (root / "a_file").write_text("x")
        return [*SYNTHETIC, option, str(root / "a_file")]
    return make


def _with_env(variable: str, argv: list[str], folder: bool) -> Callable[[Path], list[str]]:
    def make(root: Path) -> list[str]:
        target = root / "a_path"
        target.mkdir() if folder else target.write_text("x")
        ENVIRONMENT[variable] = str(target)
        return list(argv)
    return make


ENVIRONMENT: dict[str, str] = {}  # what a case's maker sets for its command


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    # overrides: every parameter declares its range, checked when the plan is built
    "batch_size=0": (lambda r: [*SYNTHETIC, "-o", "train.batch_size=0"], r"-o train\.batch_size: 0 is out of range \(must be >= 1\)"),
    "max_epochs=0": (lambda r: [*SYNTHETIC, "-o", "train.max_epochs=0"], r"-o train\.max_epochs: 0 is out of range"),
    "dev_fraction=0": (lambda r: [*SYNTHETIC, "-o", "protocol.dev_fraction=0"], r"-o protocol\.dev_fraction: 0\.0 is out of range \(must be in \(0, 1\)\)"),
    "dev_fraction=1": (lambda r: [*SYNTHETIC, "-o", "protocol.dev_fraction=1"], r"-o protocol\.dev_fraction: 1\.0 is out of range"),
    "lr<0": (lambda r: [*SYNTHETIC, "-o", "train.lr=-1"], r"-o train\.lr: -1\.0 is out of range \(must be > 0\)"),
    "layers=abc": (lambda r: [*SYNTHETIC, "-o", "upstream.layers=abc"], r"-o upstream\.layers: expected a list of int, got 'abc'"),
    "seed<0": (lambda r: [*SYNTHETIC, "--seeds", "-1"], r"--seeds"),
    "seeds twice": (lambda r: [*SYNTHETIC, "--seeds", "0,0"], r"--seeds: seed 0 is given twice"),
    "infinite lr": (lambda r: [*SYNTHETIC, "-o", "train.lr=1e400"], r"-o train\.lr: inf is not a finite number"),
    "empty seed": (lambda r: [*SYNTHETIC, "--seeds", "1,,2"], r"--seeds '1,,2': expected comma-separated integers"),
    "seed too large": (lambda r: [*SYNTHETIC, "--seeds", str(2**64)], r"--seeds: 18446744073709551616 is too large"),
    "unknown option": (lambda r: [*SYNTHETIC, "-o", "train.bacth_size=4"], r"-o train\.bacth_size: unknown parameter \(did you mean 'train\.batch_size'\?\)"),
    # label files and CSVs
    "empty fold value": (_csv(lambda t: t.replace(",1\n", ",\n", 1)), r"corpus\.csv:2: empty fold"),
    "Latin-1 bytes": (_latin1, r"corpus\.csv:2: byte 0xe9 is not UTF-8"),
    "one class": (_csv(lambda t: "\n".join(line.replace(",b,", ",a,").replace(",c,", ",a,").replace(",d,", ",a,")
                                           for line in t.splitlines()) + "\n"),
                  r"a classifier needs at least two distinct classes"),
    "class absent from a fold's training": (
        _csv(lambda t: "\n".join(line for line in t.splitlines() if ",d," not in line or line.endswith(",1")) + "\n"),
        r"fold 1: class 'd' has no training utterance"),
    "a single fold": (_csv(lambda t: "\n".join(line[:-1] + "1" if line[-1].isdigit() else line
                                               for line in t.splitlines()) + "\n"), r"fold 1 has no train utterance"),
    "no rows": (_csv(lambda t: t.splitlines()[0] + "\n"), r"corpus\.csv: no rows"),
    "folder as --data": (lambda r: [*RUN, "--protocol", "csv", "--data", str(r)], r"is a folder, expected a file"),
    "unsafe fold name": (_csv(lambda t: t.replace(",1\n", ",x/../../victim\n", 1)), r"fold name 'x/\.\./\.\./victim' cannot name a file"),
    # audio
    "not audio": (_not_audio, r"bad\.wav: cannot read audio"),
    "no samples": (_no_samples, r"empty\.wav"),
    # IEMOCAP layouts
    "IEMOCAP session without utterance": (_iemocap_without("Ses03", "iemocap_5fold"), r"session 3 has no utterance"),
    "IEMOCAP speaker without utterance": (_iemocap_without("04M", "iemocap_loso10"), r"speaker 04M has no utterance"),
    # plugins combined wrongly
    "encoder-training method on fbank": (lambda r: [*RUN[:-1], "gmp_atl", "--protocol", "synthetic"],
                                         r"downstream gmp_atl trains its encoder, and upstream fbank has no trainable"),
    # suites
    "suite name with a path": (lambda r: (r / "s.toml").write_text(
        'name = "../../evil"\nversion = "1"\n[[matrix]]\nprotocols = ["synthetic"]\nupstreams = ["fbank"]\n'
        'downstreams = ["superb"]\n') and ["bench", str(r / "s.toml"), "--dry-run"],
        r"s\.toml: name '\.\./\.\./evil' cannot name a file"),
    # settings
    "unknown config key": (lambda r: ["config", "set", "data.iemocpa", str(r)],
                           r"config key 'data\.iemocpa' is not a setting serbench reads \(did you mean 'data\.iemocap'\?\)"),
    # where things are written
    "--out is a file": (_with_file("--out"), r"--out .*a_file: is a file"),
    "SERBENCH_CACHE is a file": (_with_env("SERBENCH_CACHE", SYNTHETIC, folder=False), r"SERBENCH_CACHE=.*a_path: is a file"),
    "SERBENCH_CONFIG is a folder": (_with_env("SERBENCH_CONFIG", ["config", "get", "data.iemocap"], folder=True),
                                    r"SERBENCH_CONFIG / .*a_path: is a folder, expected a JSON file"),
    # results
    "result.json without summary": (_result(json.dumps({"schema": "serbench.result/1", "config": {}})), r"result\.json"),
    "result.json not JSON": (_result("{not json"), r"result\.json:1: not valid JSON \(Expecting property name"),
    "score of 750%": (_result(json.dumps({"schema": "serbench.result/1", "config": {
        "protocol": "p", "upstream": "u", "downstream": "d", "pooling": "mean", "seeds": [0]},
        "summary": {m: {"mean": 7.5} for m in ("ua", "wa", "macro_f1")}})), r"summary\.ua\.mean is 7\.5, not a number in \[0, 1\]"),
    "result.json not UTF-8": (_result("\udcff\udcfe garbage"), r"result\.json:1: byte 0xff is not UTF-8"),
    "NaN score": (_result('{"schema": "serbench.result/1", "config": {"protocol": "p", "upstream": "u", "downstream": '
                          '"d", "pooling": "mean", "seeds": [0]}, "summary": {"ua": {"mean": NaN}}}'),
                  r"summary\.ua\.mean is nan, not a number in \[0, 1\]"),
}


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def refused_in_one_line(argv: list[str], message: str, capsys, case: str = "") -> None:
    """``serbench ARGV`` exits 2 with one error line (no traceback) that matches ``message``."""
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, (case, err)
    assert len(err) == 1 and err[0].startswith("serbench: error: "), err  # one line, no traceback
    assert re.search(message, err[0]), err[0]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_input_gets_one_line_exit_2_and_nothing_written(case, tmp_path, capsys, monkeypatch):
    make, message = CASES[case]
    given = tmp_path / "given"
    given.mkdir()
    ENVIRONMENT.clear()
    argv = make(given)
    for variable, value in ENVIRONMENT.items():
        monkeypatch.setenv(variable, value)
    runs = tmp_path / "runs"
    if argv[0] == "run" and "--out" not in argv:
        argv += ["--out", str(runs)]
    before = _snapshot(tmp_path)
    refused_in_one_line(argv, message, capsys, case)
    assert _snapshot(tmp_path) == before  # nothing given was changed, nothing written anywhere
    assert not runs.exists() or not any(runs.iterdir())  # a refused run leaves no run folder


def test_debug_shows_the_traceback_of_a_refusal(capsys):
    assert main([*SYNTHETIC, "-o", "train.batch_size=0", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().endswith("(must be >= 1)")


def test_labels_and_fold_names_are_normalised(tmp_path):
    """A byte-order mark and whitespace around fields change nothing: the same utterances, labels
    and folds, so the same corpus digest as the clean file."""
    from serbench.run.plan import load_protocol

    clean = load_protocol("csv", _corpus(tmp_path, name="clean.csv"))
    messy = load_protocol("csv", _corpus(tmp_path, lambda t: "\ufeff" + t.replace(",a,", ", a ,").replace(",1\n", ", 1\n"),
                                         name="messy.csv"))
    assert messy.classes == clean.classes == ["a", "b", "c", "d"]
    assert [f.name for f in messy.folds] == [f.name for f in clean.folds]
    assert messy.digest() == clean.digest()
