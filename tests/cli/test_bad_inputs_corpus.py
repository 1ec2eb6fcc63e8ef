"""Issue 22's corpus and run inputs, in the bad-input table's pattern (tests/cli/test_bad_inputs.py):
each case runs the command as a user types it and must exit 2 with one line naming the culprit,
write nothing, and change no file it was given. Beside the table: a refused run refused again
for the same reason, overrides spelt differently naming one run, and truncated audio measured
against a hand count of its bytes."""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_bad_inputs import RUN, _corpus, _csv, _snapshot, refused_in_one_line

from serbench.api.audio import audio_info, load_audio
from serbench.api.errors import SerbenchError
from serbench.api.protocol import Protocol, Utterance
from serbench.cli.main import main
from serbench.run.plan import plan
from serbench.run.request import RunRequest
from serbench.run.trainer import TRAIN_PARAMS

from lookalike import tiny_wav

WAV_HEADER = 44  # bytes before the samples in a PCM WAV soundfile writes (RIFF, fmt, data chunk heads)


def _truncated_wav(root: Path) -> list[str]:
    data = _corpus(root)  # wav/0.wav: 0.05 s at 16 kHz, PCM_16 = 800 frames = 1600 bytes of samples
    wav = root / "wav" / "0.wav"
    wav.write_bytes(wav.read_bytes()[:WAV_HEADER + 600])
    return [*RUN, "--protocol", "csv", "--data", data]


def _truncated_flac(root: Path) -> list[str]:
    sf.write(root / "cut.flac", np.random.default_rng(0).normal(0, 0.05, 8000).astype(np.float32), 16000)
    (root / "cut.flac").write_bytes((root / "cut.flac").read_bytes()[:3000])
    return [*RUN, "--protocol", "csv", "--data", _corpus(root, lambda t: t.replace("wav/0.wav", "cut.flac"))]


def _id_column(value: str) -> Callable[[str], str]:
    """The corpus with an ``id`` column whose first row holds ``value`` (the others fall back to the path)."""
    return lambda t: t.replace("speaker,fold\n", "speaker,fold,id\n").replace(",1\n", f",1,{value}\n", 1)


SYNTHETIC = [*RUN, "--protocol", "synthetic", "-o", "protocol.per_class=1", "-o", "train.max_epochs=1"]

CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    # a field that does not fit on one line: a run on it never read its jobs back as done (item 3)
    "newline in a label": (_csv(lambda t: t.replace("wav/0.wav,a,", 'wav/0.wav,"a\nx",')),
                           r"corpus\.csv:2: label 'a\\nx' holds a line break \(U\+000A\); a field must fit on one line"),
    "newline in an id": (_csv(_id_column('"u\nv"')), r"corpus\.csv:2: id 'u\\nv' holds a line break \(U\+000A\)"),
    "newline in a path": (_csv(lambda t: t.replace("wav/0.wav", '"wav/0\n.wav"')),
                          r"corpus\.csv:2: path 'wav/0\\n\.wav' holds a line break"),
    "CR in a speaker": (_csv(lambda t: t.replace(",s0,1\n", ',"s\r0",1\n', 1)),
                        r"corpus\.csv:2: speaker 's\\r0' holds a line break \(U\+000D\)"),
    "NUL in a label": (_csv(lambda t: t.replace("wav/1.wav,b,", "wav/1.wav,b\x00,")), r"corpus\.csv:3: label 'b\\x00' holds a NUL"),
    "line separator in a speaker": (_csv(lambda t: t.replace(",s0,1\n", ",s\u20280,1\n", 1)),
                                    r"corpus\.csv:2: speaker 's\\u20280' holds a line break \(U\+2028\)"),
    "newline in a column name": (_csv(lambda t: t.replace("speaker,", '"spea\nker",', 1)),
                                 r"corpus\.csv:1: column name 'spea\\nker' holds a line break"),
    # a break at a field's edge is whitespace (stripped, as spaces are); lines count on after it
    "line of a row after a two-line row": (_csv(lambda t: t.replace("wav/3.wav,d,", 'wav/3.wav,"d\n",')
                                                .replace("wav/4.wav,a,", 'wav/4.wav,"a\nq",')),
                                           r"corpus\.csv:7: label 'a\\nq' holds a line break"),
    # labels that differ only by case: refused, never merged (item 5)
    "labels A and a": (_csv(lambda t: t.replace("wav/4.wav,a,", "wav/4.wav,A,")),
                       r"corpus\.csv:6: label 'A' differs from 'a' \(line 2\) only by case"),
    "classes A and a given": (_csv(lambda t: t), r"classes 'A' and 'a' differ only by case"),
    # --data "" is not the current directory, nor the saved location (item 5)
    "--data '' (csv)": (lambda r: [*RUN, "--protocol", "csv", "--data", ""], r"--data '': an empty path"),
    "--data '' (no corpus needed)": (lambda r: [*SYNTHETIC, "--data", ""], r"--data '': an empty path"),
    "--data ' ' (splits)": (lambda r: ["splits", "csv", "--data", " "], r"--data ' ': an empty path"),
    "--data '' (data check)": (lambda r: ["data", "check", "csv", "--data", ""], r"--data '': an empty path"),
    "--data '' (check-plugin)": (lambda r: ["check-plugin", "protocol", "csv", "--data", ""], r"--data '': an empty path"),
    "--out ''": (lambda r: [*SYNTHETIC, "--out", ""], r"--out '': an empty path; give the folder for run directories"),
    "--out '' --prepare": (lambda r: [*SYNTHETIC, "--prepare", "--out", ""], r"--out '': an empty path"),
    # truncated audio, refused naming the file before the run directory exists (item 5)
    "truncated wav": (_truncated_wav, r"wav/0\.wav: truncated audio: its header declares 1600 bytes of samples and the "
                                      r"file holds 600"),
    "truncated flac": (_truncated_flac, r"cut\.flac: truncated or damaged audio: its header declares 8000 frames"),
    # refused by the model a job would build: before, by every job after the features were extracted (item 6)
    "wavlm_cond gender with text": (lambda r: [*RUN[:-1], "wavlm_cond", *SYNTHETIC[len(RUN):], "-o", "downstream.gender=sum",
                                               "-o", "downstream.text=mul"],
                                    r"downstream wavlm_cond: text modes already combine the gender embedding"),
    "cache budget": (lambda r: [*_csv(lambda t: t)(r), "-o", "cache.budget_gb=0"],  # (an empty cache: see below)
                     r"the feature cache would grow by about .* over the budget of 0 B"),
}


def _argv(case: str, given: Path, runs: Path) -> list[str]:
    argv = CASES[case][0](given)
    if case == "classes A and a given":
        argv += ["-o", "protocol.classes=('A','a','b','c','d')"]
    if argv[0] == "run" and "--out" not in argv:
        argv += ["--out", str(runs)]
    return argv


@pytest.mark.parametrize("case", CASES)
def test_a_bad_corpus_or_run_input_gets_one_line_exit_2_and_nothing_written(case, tmp_path, capsys, monkeypatch,
                                                                          tmp_path_factory):
    given, runs = tmp_path / "given", tmp_path / "runs"
    given.mkdir()
    monkeypatch.setenv("SERBENCH_CACHE", str(tmp_path_factory.mktemp("empty-cache")))  # no feature is a hit
    monkeypatch.chdir(given)  # a path of "" would be this folder
    argv = _argv(case, given, runs)
    before = _snapshot(tmp_path)
    refused_in_one_line(argv, CASES[case][1], capsys, case)
    assert _snapshot(tmp_path) == before  # nothing given was changed, nothing written anywhere
    assert not runs.exists()  # a refused run creates no run folder, not even --out


@pytest.mark.parametrize("case", ["truncated wav", "labels A and a", "wavlm_cond gender with text"])
def test_a_refused_run_is_refused_again_for_the_same_reason(case, tmp_path, capsys):
    """Nothing a refusal leaves behind can change the next attempt's answer (before, a run
    refused after creating its directory was refused the second time for another reason)."""
    given, runs = tmp_path / "given", tmp_path / "runs"
    given.mkdir()
    argv = _argv(case, given, runs)
    answers = []
    for _ in range(2):
        capsys.readouterr()
        assert main(list(argv)) == 2
        answers.append(capsys.readouterr().err.strip())
        assert not runs.exists()
    assert answers[0] == answers[1] and re.search(CASES[case][1], answers[0])


def test_any_protocol_refuses_a_name_with_a_line_break(tmp_path):
    """A protocol plugin whose reader lets one through (an EmoBox key "a\\nb" decoded from JSON)."""
    tiny_wav(tmp_path / "x.wav", 0)
    utterances = [Utterance(f"u{k}", tmp_path / "x.wav", "ab"[k % 2], f"s{k}") for k in range(4)]
    Protocol("p", utterances, [], ["a", "b"])  # accepted as it is
    for field, value in (("id", "u\n9"), ("label", "a\x00"), ("speaker", "s\u20299")):
        bad = Utterance(**{"id": "u9", "path": tmp_path / "x.wav", "label": "a", "speaker": "s9", field: value})
        with pytest.raises(SerbenchError, match=rf"protocol p: utterance .*: {field} .* holds a (line break|NUL)"):
            Protocol("p", [*utterances, bad], [], ["a", "b"])


def _ids(*overrides: str, downstream: str = "superb") -> str:
    return plan(RunRequest("fbank", downstream, protocol="synthetic", device="cpu", overrides=list(overrides))).run_id


def test_overrides_spelt_differently_or_equal_to_their_default_name_one_run():
    default_lr = {p.name: p.default for p in TRAIN_PARAMS}["lr"]
    base = _ids()
    assert _ids(f"train.lr={default_lr!r}") == base  # -o train.lr=<default> is no override
    assert _ids("train.lr=1e-3") == _ids("train.lr=0.001")  # the same number, written two ways
    assert _ids("train.lr=1e-4") == _ids("train.lr=0.0001") != base
    assert _ids("train.lr=1") == _ids("train.lr=1.0") != base  # an int where a float is meant
    assert _ids("train.shuffle_labels=true") == _ids("train.shuffle_labels=True") != base
    one = plan(RunRequest("fbank", "superb", protocol="synthetic", device="cpu", overrides=["train.lr=1", "downstream.hidden=256"]))
    assert one.config["overrides"] == {"train": {"lr": 1.0}}  # recorded as the parameter's type; 256 is the default


def test_an_override_equal_to_the_recipes_value_is_the_recipes_run():
    paper = plan(RunRequest("fbank", "sap_gap", protocol="synthetic", device="cpu"))
    lr = paper.config["recipe"]["values"]["train.lr"]
    again = plan(RunRequest("fbank", "sap_gap", protocol="synthetic", device="cpu", overrides=[f"train.lr={lr!r}"]))
    assert again.run_id == paper.run_id and again.config["recipe"]["replaced_by_user"] == []
    other = plan(RunRequest("fbank", "sap_gap", protocol="synthetic", device="cpu", overrides=[f"train.lr={lr / 2!r}"]))
    assert other.run_id != paper.run_id and other.config["recipe"]["replaced_by_user"] == ["train.lr"]


def test_the_command_line_prepares_one_run_directory_for_each_run_however_spelt(tmp_path, capsys):
    default_lr = {p.name: p.default for p in TRAIN_PARAMS}["lr"]
    prepared = []
    for spelling in ([], [f"train.lr={default_lr!r}"], ["train.lr=1e-4"], ["train.lr=0.0001"]):
        capsys.readouterr()
        assert main([*SYNTHETIC, "--prepare", "--out", str(tmp_path), *(a for o in spelling for a in ("-o", o))]) == 0
        prepared.append(re.search(r"prepared (\S+):", capsys.readouterr().out).group(1))
    assert prepared[0] == prepared[1] != prepared[2] == prepared[3]
    assert len(list(tmp_path.iterdir())) == 2


def test_truncated_wav_and_aiff_are_measured_by_their_headers(tmp_path):
    """The counts in the message are the file's own: 800 frames of 16-bit mono declare 1600 bytes;
    libsndfile alone reads the cut file as 300 frames without a word."""
    tiny_wav(tmp_path / "whole.wav", 0)
    whole = (tmp_path / "whole.wav").read_bytes()
    assert audio_info(tmp_path / "whole.wav").frames == 800 and load_audio(tmp_path / "whole.wav").shape == (800,)
    (tmp_path / "cut.wav").write_bytes(whole[:WAV_HEADER + 600])
    assert sf.info(tmp_path / "cut.wav").frames == 300  # what a run read before: shorter audio
    for read in (audio_info, load_audio):
        with pytest.raises(SerbenchError, match=r"cut\.wav: truncated audio: its header declares 1600 bytes of samples "
                                                r"and the file holds 600"):
            read(tmp_path / "cut.wav")
    sf.write(tmp_path / "whole.aiff", np.zeros(800, dtype=np.float32), 16000, subtype="PCM_16")
    aiff = (tmp_path / "whole.aiff").read_bytes()
    ssnd = aiff.index(b"SSND")
    declared = struct.unpack(">I", aiff[ssnd + 4:ssnd + 8])[0]
    assert declared == 8 + 1600  # SSND: offset and block size, then the samples
    (tmp_path / "cut.aiff").write_bytes(aiff[:ssnd + 8 + 100])
    with pytest.raises(SerbenchError, match=rf"cut\.aiff: truncated audio: its header declares {declared} bytes .* holds 100"):
        audio_info(tmp_path / "cut.aiff")


def test_a_wav_written_through_a_pipe_is_not_called_truncated(tmp_path):
    """A writer that cannot seek back leaves 0xFFFFFFFF as the data length: no length to check."""
    tiny_wav(tmp_path / "a.wav", 0)
    raw = bytearray((tmp_path / "a.wav").read_bytes())
    data = raw.index(b"data")
    raw[data + 4:data + 8] = struct.pack("<I", 0xFFFFFFFF)
    (tmp_path / "piped.wav").write_bytes(bytes(raw))
    assert np.allclose(load_audio(tmp_path / "piped.wav"), load_audio(tmp_path / "a.wav"))


def test_iemocap_line_numbers_count_lines_as_an_editor_does(tmp_path):
    """A form feed inside an annotator's line (``str.splitlines`` breaks there) does not shift the
    line a later problem is reported at: line 7 is the dialog's second utterance line."""
    from serbench.run.plan import load_protocol

    from lookalike import write_iemocap

    ids = [f"Ses0{s}{g}_impro01_{g}00{k}" for s in range(1, 6) for g in "FM" for k in range(2)]
    write_iemocap(tmp_path, [(i, "neu") for i in ids])
    path = tmp_path / "Session1" / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt"
    lines = path.read_text().split("\n")
    assert lines[6].split("\t")[1] == "Ses01F_impro01_F001"  # line 7, as counted by hand
    lines[3] = lines[3].replace("Neutral", "Neu\x0ctral")
    lines[6] = lines[6].replace("\tneu\t", "\tzzz\t")
    path.write_text("\n".join(lines))
    with pytest.raises(SerbenchError, match=r"Ses01F_impro01\.txt:7: unknown label code 'zzz'"):
        load_protocol("iemocap_5fold", tmp_path)


def test_an_emobox_key_whose_json_holds_an_escaped_newline_is_refused(tmp_path):
    """JSON lines cannot hold a raw line break, but ``"key": "a\\nb"`` decodes to one: refused with file:line."""
    from test_emobox_speakers import load, record, write_dataset

    rows = [record("mer2023", f"s{n:02d}", "happy" if n % 2 else "sad") for n in range(8)]
    rows[0] = record("mer2023", "s\n00", "sad", wav="downloads/mer2023/s00.wav")
    data = write_dataset(tmp_path, "mer2023", {"1": {"train": rows[:6], "test": rows[6:]}}, {"happy": "Happy", "sad": "Sad"})
    assert '"mer2023-s\\n00"' in (data / "mer2023.jsonl").read_text()  # escaped on its line, as JSON must
    with pytest.raises(SerbenchError, match=r"mer2023\.jsonl:1: key 'mer2023-s\\n00' holds a line break \(U\+000A\)"):
        load(tmp_path, data)
