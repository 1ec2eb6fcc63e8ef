"""Utterances that are stretches of a longer file (EmoBox's pavoque: one long flac per speaking
style, each record a start_time/end_time segment of it): read, hashed, cached and checked as
their own audio, while a corpus of whole files keeps its digest and cache keys.

References are independent of serbench's reader: soundfile reading the whole file and numpy
slicing it (frames ``int(seconds * rate)`` at both ends, as EmoBox's ``read_wav`` computes
them), scipy's ``resample_poly``, hashlib over the file's bytes, and a digest computed with the
code as it was before segments existed."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly
from test_emobox_speakers import load, record, write_dataset

import serbench
from serbench.api.audio import check_readable, load_utterance, utterance_frames
from serbench.api.errors import SerbenchError
from serbench.api.protocol import Fold, Protocol, Utterance
from serbench.api.user_config import cache_dir
from serbench.run.batching import AudioBatcher
from serbench.run.cache import FeatureCache, audio_hash, scan, utterance_hash
from serbench.run.datacheck import check as data_check

SEGMENTS = [(0.0, 0.25), (0.25, 0.61), (0.9, 1.3)]  # seconds; the file is 1.5 s long


def long_file(path: Path, rate: int = 16000, channels: int = 1, seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    """Write ``seconds`` of noise (16-bit) to ``path``; return what soundfile reads back from the whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, (int(seconds * rate), channels)).astype(np.float32)
    sf.write(path, noise, rate, subtype="PCM_16")
    whole, _ = sf.read(path, dtype="float32", always_2d=True)
    return whole


def segment(path: Path, uid: str, start: float | None = None, end: float | None = None, **extra) -> Utterance:
    return Utterance(uid, path, "ang", "spk", start=start, end=end, **extra)


@pytest.mark.parametrize("name, rate, channels", [("long.flac", 16000, 1), ("stereo.wav", 16000, 2),
                                                  ("studio.flac", 44100, 1)])
def test_each_segment_loads_exactly_its_slice_of_the_file(tmp_path, name, rate, channels):
    whole = long_file(tmp_path / name, rate, channels)
    for n, (start, end) in enumerate(SEGMENTS):
        u = segment(tmp_path / name, f"u{n}", start, end)
        expected = whole[int(start * rate): int(end * rate)].mean(axis=1)
        if rate != 16000:
            expected = resample_poly(expected, 160, 441)
        np.testing.assert_allclose(load_utterance(u), expected, rtol=0, atol=1e-6)
        assert utterance_frames(u) == (int(end * rate) - int(start * rate), rate)
    whole_file = segment(tmp_path / name, "all")
    expected = whole.mean(axis=1) if rate == 16000 else resample_poly(whole.mean(axis=1), 160, 441)
    np.testing.assert_allclose(load_utterance(whole_file), expected, rtol=0, atol=1e-6)


def test_a_corpus_reports_segment_durations(tmp_path):
    long_file(tmp_path / "long.flac")
    utterances = [segment(tmp_path / "long.flac", f"u{n}", *times) for n, times in enumerate(SEGMENTS * 2)]
    protocol = Protocol("t", utterances, [Fold("1", ("u0", "u1"), ("u2", "u3"), ("u4", "u5"))], ["ang", "neu"])
    report = data_check(protocol)
    assert report.seconds == pytest.approx([end - start for start, end in SEGMENTS * 2], abs=1 / 16000)


def test_segments_have_their_own_cache_keys_and_whole_files_keep_theirs(tmp_path):
    long_file(tmp_path / "long.flac")
    by_bytes = hashlib.blake2b((tmp_path / "long.flac").read_bytes(), digest_size=16).hexdigest()
    whole = segment(tmp_path / "long.flac", "all")
    assert utterance_hash(whole) == audio_hash(tmp_path / "long.flac") == by_bytes
    keys = [utterance_hash(segment(tmp_path / "long.flac", f"u{n}", *times)) for n, times in enumerate(SEGMENTS)]
    assert len(set(keys)) == 3 and by_bytes not in keys
    assert utterance_hash(segment(tmp_path / "long.flac", "again", *SEGMENTS[1])) == keys[1]  # times, not ids


def test_fine_tuning_batches_hold_each_segment_alone(tmp_path):
    whole = long_file(tmp_path / "studio.flac", rate=44100)[:, 0]
    utterances = {f"u{n}": segment(tmp_path / "studio.flac", f"u{n}", *times) for n, times in enumerate(SEGMENTS)}
    batcher = AudioBatcher(utterances, ["ang"], crop_seconds=0, seed=0)
    batch = batcher(list(utterances))
    for row, (start, end) in enumerate(SEGMENTS):
        expected = resample_poly(whole[int(start * 44100): int(end * 44100)], 160, 441)
        assert batch["wav_lengths"][row] == expected.size
        np.testing.assert_allclose(batch["wavs"][row, : expected.size].numpy(), expected, rtol=0, atol=1e-6)
    assert batcher.lengths(list(utterances)) == [round((int(e * 44100) - int(s * 44100)) * 16000 / 44100)
                                                 for s, e in SEGMENTS]


# The corpus below, digested by Protocol.digest before utterances could be segments (commit de2a882).
DIGEST_BEFORE_SEGMENTS = "81e365db97bfe008"


def small_corpus(**segment_of_c) -> Protocol:
    utterances = [Utterance("a", Path("a.wav"), "ang", "s1", "F", "S1", {"valence": 0.25}, "hello", 1.5),
                  Utterance("b", Path("b.wav"), "neu", "s2", None, None),
                  Utterance("c", Path("c.wav"), "ang", "s3", "M", **segment_of_c)]
    return Protocol("t", utterances, [Fold("1", ("a",), ("b",), ("c",))], ["ang", "neu"])


def test_digest_of_a_corpus_without_segments_is_unchanged_and_a_segment_moves_it():
    assert small_corpus().digest() == DIGEST_BEFORE_SEGMENTS
    segmented = {small_corpus(start=0.0, end=1.0).digest(), small_corpus(start=0.0, end=1.5).digest()}
    assert len(segmented) == 2 and DIGEST_BEFORE_SEGMENTS not in segmented
    assert small_corpus(origin="x.jsonl:3").digest() == DIGEST_BEFORE_SEGMENTS  # where it was read is no content


@pytest.mark.parametrize("times, problem", [
    ({"start": 1.0}, "needs both a start and an end"),
    ({"end": 1.0}, "needs both a start and an end"),
    ({"start": 2.0, "end": 1.0}, "before the end"),
    ({"start": 1.0, "end": 1.0}, "before the end"),
    ({"start": -0.5, "end": 1.0}, "start must be >= 0"),
    ({"start": float("nan"), "end": 1.0}, "not a number of seconds"),
    ({"start": "0", "end": 1.0}, "not a number of seconds"),
])
def test_utterance_refuses_a_malformed_segment(tmp_path, times, problem):
    with pytest.raises(SerbenchError, match=f"^list.csv:4: .*{problem}"):
        segment(tmp_path / "x.wav", "u", origin="list.csv:4", **times)


def test_a_segment_past_the_end_of_its_file_is_refused_naming_file_and_line(tmp_path):
    long_file(tmp_path / "long.flac")  # 1.5 s
    inside = segment(tmp_path / "long.flac", "u0", 1.0, 1.5, origin="p.jsonl:1")
    past = segment(tmp_path / "long.flac", "u1", 1.2, 1.8, origin="p.jsonl:2")
    check_readable([inside])
    for read in (lambda: check_readable([inside, past]), lambda: load_utterance(past)):
        with pytest.raises(SerbenchError) as caught:
            read()
        message = str(caught.value)
        assert "\n" not in message and str(tmp_path / "long.flac") in message and "p.jsonl:2" in message
        assert "past the file's end (1.500 s)" in message


# ---- EmoBox's pavoque: records as EmoBox writes them (data/pavoque/pavoque.jsonl) -------------------------

STYLES = {"angry": 0.9, "neutral": 0.1, "sad": 0.4}  # style -> loudness of its recording


def pavoque_rows(lengths=(0.3, 0.45, 0.6, 0.35, 0.5, 0.4, 0.55, 0.3), past_end: bool = False) -> dict[str, list]:
    """Each style's records: consecutive stretches of its flac, from 0.1 s (the last sad one 5 s past
    the file's end when ``past_end``)."""
    rows = {}
    for style in STYLES:
        wav = f"downloads/pavoque/pavoque-{style}.flac"
        start, rows[style] = 0.1, []
        for n, length in enumerate(lengths):
            end = round(start + length, 2) + (5.0 if past_end and style == "sad" and n == len(lengths) - 1 else 0)
            rows[style].append(record("pavoque", f"poker_n00{10 + n}-{style}", style, wav=wav, sample_rate=44100,
                                      num_frame=(end - start) * 44100, length=end - start, start_time=start,
                                      end_time=end))
            start = round(start + length, 2)
    return rows


def write_pavoque(root: Path, past_end: bool = False) -> Path:
    """EmoBox's pavoque folder: 8 segments per style, 6 trained on and 2 tested; one 3.6 s flac per
    style at 44.1 kHz (as PAVOQUE's), a 220 Hz tone whose loudness is the style's, with some noise."""
    rows = pavoque_rows(past_end=past_end)
    fold = {"train": [r for style in STYLES for r in rows[style][:6]],
            "test": [r for style in STYLES for r in rows[style][6:]]}
    data = write_dataset(root, "pavoque", {"1": fold}, {s: s.capitalize() for s in STYLES})
    for style, loudness in STYLES.items():  # over write_dataset's tiny stand-in for each wav
        tone = loudness * np.sin(2 * np.pi * 220 * np.arange(int(3.6 * 44100)) / 44100)
        noise = np.random.default_rng(len(style)).normal(0, 0.01, tone.size)
        sf.write(root / f"downloads/pavoque/pavoque-{style}.flac", (tone + noise).astype(np.float32), 44100,
                 subtype="PCM_16")
    return data


def line_of(index: Path, key: str) -> int:
    return next(n for n, line in enumerate(index.read_text().splitlines(), 1) if json.loads(line)["key"] == key)


def test_pavoque_records_are_segments_of_their_style_flac(tmp_path):
    data = write_pavoque(tmp_path)
    protocol = load(tmp_path, data)
    u = protocol.utterances["pavoque-poker_n0011-sad"]
    line = line_of(data / "pavoque.jsonl", u.id)
    assert (u.start, u.end, u.origin) == (0.4, 0.85, f"{data / 'pavoque.jsonl'}:{line}")
    whole, _ = sf.read(tmp_path / "downloads/pavoque/pavoque-sad.flac", dtype="float32")
    expected = resample_poly(whole[int(0.4 * 44100): int(0.85 * 44100)], 160, 441)
    np.testing.assert_allclose(load_utterance(u), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("fields, problem", [
    ({"start_time": "0.1"}, "start_time '0.1' is not a number of seconds"),
    ({"end_time": None}, "end_time None is not a number of seconds"),
    ({"start_time": 0.9, "end_time": 0.4}, "start_time 0.9 and end_time 0.4: a segment starts at 0 or later and ends "
                                           "after it starts"),
])
def test_pavoque_times_not_numbers_or_reversed_name_the_line(tmp_path, fields, problem):
    data = write_pavoque(tmp_path)
    index = data / "pavoque.jsonl"
    lines = index.read_text().splitlines()
    bad = json.loads(lines[4])
    bad.update(fields)
    lines[4] = json.dumps(bad)
    index.write_text("\n".join(lines) + "\n")
    with pytest.raises(SerbenchError, match=f"^{re.escape(str(index))}:5: {re.escape(problem)}"):
        load(tmp_path, data)


FAST = ["train.max_epochs=3", "train.batch_size=4", "downstream.hidden=16"]


def test_pavoque_runs_end_to_end_with_each_segment_cached_as_its_own_audio(tmp_path, monkeypatch):
    monkeypatch.setenv("SERBENCH_CACHE", str(tmp_path / "cache"))  # its own cache: one fbank entry, 24 misses
    data = write_pavoque(tmp_path / "corpus")
    result = serbench.run_benchmark("fbank", "superb", protocol="emobox", data=data, out=tmp_path / "runs",
                          overrides=FAST + [f"protocol.audio_root={tmp_path / 'corpus'}"])
    assert result.data["cache"]["misses"] == 24  # 3 flacs, 24 segments: each extracted once
    (run_dir,) = (tmp_path / "runs").iterdir()
    audio = json.loads((run_dir / "corpus.json").read_text())["audio"]
    assert len(set(audio.values())) == 24
    (entry,) = [e for e in scan(cache_dir()) if e.meta.get("upstream") == "fbank"]
    protocol = load(tmp_path / "corpus", data)
    for u in protocol.utterances.values():  # fbank: 100 frames a second of its own segment, not of the file
        features, _ = FeatureCache.read_array(entry.folder / utterance_hash(u)[:2] / f"{utterance_hash(u)}.npy")
        assert abs(features.shape[1] - (u.end - u.start) * 100) <= 3, u.id
    predictions = (run_dir / "predictions.csv").read_text().splitlines()
    assert len(predictions) == 1 + 6  # the test split: two segments per style


def test_pavoque_segment_past_its_file_is_refused_before_the_run_directory_exists(tmp_path):
    data = write_pavoque(tmp_path / "corpus", past_end=True)
    with pytest.raises(SerbenchError) as caught:
        serbench.run_benchmark("fbank", "superb", protocol="emobox", data=data, out=tmp_path / "runs",
                     overrides=FAST + [f"protocol.audio_root={tmp_path / 'corpus'}"])
    message = str(caught.value)
    assert "\n" not in message
    assert str(tmp_path / "corpus/downloads/pavoque/pavoque-sad.flac") in message
    line = line_of(data / "pavoque.jsonl", "pavoque-poker_n0017-sad")
    assert f"{data / 'pavoque.jsonl'}:{line}" in message and "ends past the file's end" in message
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
