"""The run id holds neither the device nor the corpus's location, but the corpus's content: a
copy elsewhere resumes the same run, another corpus (or an edited one) gets its own."""

from __future__ import annotations

import json

import pytest

import serbench
from serbench.api.errors import SerbenchError
from serbench.run.plan import load_plan, plan
from serbench.run.request import RunRequest

from lookalike import tiny_wav

FAST = ["train.max_epochs=1"]


def _corpus(folder, relabel: bool = False):
    folder.mkdir()
    rows = []
    for k in range(12):
        tiny_wav(folder / f"{k}.wav", seed=k, seconds=0.3)
        label = "b" if relabel and k == 0 else "ab"[k % 2]
        rows.append(f"{k}.wav,{label},{['train', 'dev', 'test', 'train'][k % 4]}")
    (folder / "c.csv").write_text("path,label,split\n" + "\n".join(rows) + "\n")
    return folder / "c.csv"


def test_the_same_corpus_elsewhere_resumes_the_same_run_and_an_edited_one_gets_its_own(tmp_path):
    here, there = _corpus(tmp_path / "here"), _corpus(tmp_path / "there")
    first = serbench.run_benchmark("fbank", "superb", protocol="csv", data=here, out=tmp_path / "runs", overrides=FAST)
    assert first.data["environment"]["data"].endswith("here/c.csv")  # recorded, not hashed
    again = plan(RunRequest("fbank", "superb", None, None, "csv", there, (0,), "cpu", FAST))
    assert again.run_id == first.run_id  # another mount of the same corpus: the same run directory
    assert plan(RunRequest("fbank", "superb", None, None, "csv", here, (0,), "auto", FAST)).run_id == first.run_id
    before = json.loads((first.run_dir / "folds" / "fold-1_seed-0.json").read_text())
    second = serbench.run_benchmark("fbank", "superb", protocol="csv", data=there, out=tmp_path / "runs", overrides=FAST)
    assert second.run_dir == first.run_dir
    assert json.loads((second.run_dir / "folds" / "fold-1_seed-0.json").read_text()) == before  # resumed, not redone
    there.write_text(there.read_text().replace("0.wav,a,", "0.wav,b,"))  # the copy the run last read, edited
    edited = serbench.run_benchmark("fbank", "superb", protocol="csv", data=there, out=tmp_path / "runs", overrides=FAST)
    assert edited.run_dir != first.run_dir  # computed afresh on the edited labels; the first run is kept
    assert json.loads((first.run_dir / "folds" / "fold-1_seed-0.json").read_text()) == before
    log = (edited.run_dir / "run.log").read_text()
    assert f"not resumed: {first.run_dir.name} ran this command on other corpus content" in log
    with pytest.raises(SerbenchError, match=rf"{first.run_dir.name}: its corpus at .*there/c\.csv changed since it ran"):
        load_plan(first.run_dir)  # what serbench job and serbench finish do with a run directory


def test_two_corpora_read_by_one_protocol_get_a_run_each(tmp_path):
    """Two CSV corpora (or two EmoBox datasets) in one output folder: neither refuses the other."""
    one = serbench.run_benchmark("fbank", "superb", protocol="csv", data=_corpus(tmp_path / "one"), out=tmp_path / "runs", overrides=FAST)
    two = serbench.run_benchmark("fbank", "superb", protocol="csv", data=_corpus(tmp_path / "two", relabel=True),
                       out=tmp_path / "runs", overrides=FAST)
    assert one.run_dir != two.run_dir and one.run_dir.parent == two.run_dir.parent


def test_audio_replaced_after_a_run_started_is_detected_on_rerun(tmp_path):
    """Same ids, labels and folds but other sound: the job files are not results on this audio."""
    corpus = _corpus(tmp_path / "c")
    first = serbench.run_benchmark("fbank", "superb", protocol="csv", data=corpus, out=tmp_path / "runs", overrides=FAST)
    tiny_wav(tmp_path / "c" / "5.wav", seed=99, seconds=0.3)
    with pytest.raises(SerbenchError, match=r"1 audio files changed since this run started \(first: .*5\.wav\)"):
        serbench.run_benchmark("fbank", "superb", protocol="csv", data=corpus, out=tmp_path / "runs", overrides=FAST)
    assert json.loads((first.run_dir / "result.json").read_text())["summary"] == first.summary  # kept as it was
