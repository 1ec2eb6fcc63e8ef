"""The feature cache: hits, misses, invalidation, corruption, concurrent use, budget, CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import serbench
from serbench.api.errors import SerbenchError
from serbench.api.protocol import Utterance
from serbench.run.cache import CacheKey, FeatureCache, audio_hash, scan
from serbench.run.features import extract
from serbench.run.registry import create
from serbench_plugins.upstreams.fbank import Fbank

from conftest import run_cli
from lookalike import tiny_wav

CPU = torch.device("cpu")


def _corpus(folder, n=6):
    out = []
    for k in range(n):
        tiny_wav(folder / f"{k}.wav", seed=k, seconds=0.3 + 0.1 * k)
        out.append(Utterance(id=f"u{k}", path=folder / f"{k}.wav", label="a", speaker="s"))
    return out


def _cache(root, upstream, layers=(0,)):
    key = CacheKey("fbank", upstream.fingerprint(), layers, "float16", upstream.dim, upstream.frame_rate)
    return FeatureCache(root, key)


def test_hit_miss_invalidation_and_corruption(tmp_path):
    utts = _corpus(tmp_path / "audio")
    upstream = create("upstream", "fbank")
    cache = _cache(tmp_path / "cache", upstream)
    first, stats = extract(upstream, utts, CPU, (0,), cache)
    assert (stats.hits, stats.misses) == (0, 6) and stats.bytes > 0
    again, stats = extract(upstream, utts, CPU, (0,), cache)
    assert (stats.hits, stats.misses) == (6, 0)
    for u in utts:
        np.testing.assert_array_equal(first[u.id], again[u.id])
        assert isinstance(again[u.id], np.memmap) and again[u.id].dtype == np.float16
    # a changed audio file is a new entry; the others still hit
    tiny_wav(utts[2].path, seed=99, seconds=0.8)
    changed, stats = extract(upstream, utts, CPU, (0,), cache)
    assert (stats.hits, stats.misses) == (5, 1)
    assert changed["u2"].shape != first["u2"].shape
    changed = {k: np.array(v) for k, v in changed.items()}  # off the memory maps before damaging a file
    # a truncated entry is detected, removed and rebuilt
    entry = cache.path(audio_hash(utts[0].path))
    entry.write_bytes(entry.read_bytes()[:100])
    repaired, stats = extract(upstream, utts, CPU, (0,), cache)
    assert (stats.hits, stats.misses) == (5, 1)
    for u in utts:
        np.testing.assert_array_equal(repaired[u.id], changed[u.id])


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-40])  # the array's last values and the trailer gone


def _zero_fill(path):
    data = bytearray(path.read_bytes())
    data[128:-33] = bytes(len(data) - 161)  # header and trailer kept, the values zeroed
    path.write_bytes(bytes(data))


def _zero_file(path):
    path.write_bytes(bytes(path.stat().st_size))


def _wrong_shape(path):
    FeatureCache.write_array(path, np.zeros((1, 3, 7), dtype=np.float16))  # a valid checksum, another dim


def _no_trailer(path):
    np.save(path, np.load(path))  # the same values as numpy writes them: nothing vouches for them


@pytest.mark.parametrize("damage, problem", [
    (_truncate, r"no checksum trailer"), (_zero_fill, r"checksum differs"), (_zero_file, r"no checksum trailer"),
    (_wrong_shape, r"shape \(1, 3, 7\), expected \(1 layers, frames, 80 dims\)"), (_no_trailer, r"no checksum trailer")])
def test_a_damaged_entry_is_reported_and_computed_again_never_served(tmp_path, caplog, damage, problem):
    """Each damage keeps a file numpy may still load (a zero-filled array of the right shape
    loads as zeros): only the checksum written with the entry tells it from a hit."""
    utts = _corpus(tmp_path / "audio", n=3)
    upstream = create("upstream", "fbank")
    cache = _cache(tmp_path / "cache", upstream)
    first, _ = extract(upstream, utts, CPU, (0,), cache)
    first = {k: np.array(v) for k, v in first.items()}
    entry = cache.path(audio_hash(utts[1].path))
    damage(entry)
    with caplog.at_level("WARNING", logger="serbench"):
        again, stats = extract(upstream, utts, CPU, (0,), cache)
    assert (stats.hits, stats.misses) == (2, 1)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and str(entry) in warned[0] and "(utterance u1)" in warned[0], warned
    assert re.search(problem, warned[0]), warned[0]
    for u in utts:  # every value as a fresh extraction gives it
        np.testing.assert_array_equal(np.array(again[u.id]), first[u.id])
    assert FeatureCache.read_array(entry)[1] == ""  # rebuilt whole, checksum and all


def test_values_match_a_fresh_extraction_within_fp16(tmp_path):
    utts = _corpus(tmp_path / "audio", n=2)
    upstream = create("upstream", "fbank")
    cached, _ = extract(upstream, utts, CPU, (0,), _cache(tmp_path / "cache", upstream))
    exact, _ = extract(upstream, utts, CPU, (0,), None, dtype="float32")
    for u in utts:
        np.testing.assert_allclose(np.asarray(cached[u.id], dtype=np.float32), exact[u.id], rtol=1e-3, atol=1e-2)


def test_layer_selection_and_budget(tmp_path):
    utts = _corpus(tmp_path / "audio", n=3)
    upstream = create("upstream", "tiny")
    key = CacheKey("tiny", upstream.fingerprint(), (0, 2), "float16", upstream.dim, upstream.frame_rate)
    features, _ = extract(upstream, utts, CPU, (0, 2), FeatureCache(tmp_path / "cache", key))
    assert features["u0"].shape[0] == 2
    with pytest.raises(SerbenchError, match=r"the feature cache would grow by about .* over the budget .*-o upstream.layers"):
        extract(upstream, utts, CPU, (0, 1, 2), _cache(tmp_path / "other", upstream, (0, 1, 2)), budget_bytes=100)


CONCURRENT = textwrap.dedent("""
    import sys, torch
    from pathlib import Path
    from serbench.run.cache import CacheKey, FeatureCache
    from serbench.api.protocol import Utterance
    from serbench.run.features import extract
    from serbench.run.registry import create
    root, audio = Path(sys.argv[1]), Path(sys.argv[2])
    utts = [Utterance(id=p.stem, path=p, label="a", speaker="s") for p in sorted(audio.glob("*.wav"))]
    up = create("upstream", "tiny")
    key = CacheKey("tiny", up.fingerprint(), (0, 1, 2), "float16", up.dim, up.frame_rate)
    features, stats = extract(up, utts, torch.device("cpu"), (0, 1, 2), FeatureCache(root, key))
    print(stats.hits, stats.misses, sum(float(abs(f).sum()) for f in features.values()))
""")


@pytest.mark.e2e
def test_two_runs_sharing_the_cache_take_turns(tmp_path):
    _corpus(tmp_path / "audio", n=8)
    cmd = [sys.executable, "-c", CONCURRENT, str(tmp_path / "cache"), str(tmp_path / "audio")]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate() for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    results = sorted(tuple(o[0].split()) for o in outs)
    assert [r[:2] for r in results] == [("0", "8"), ("8", "0")]  # one extracted, the other only read
    assert results[0][2] == results[1][2]
    (entry,) = scan(tmp_path / "cache")
    assert entry.entries == 8


def test_second_run_needs_no_encoder_forward_pass(tmp_path, monkeypatch):
    monkeypatch.setenv("SERBENCH_CACHE", str(tmp_path / "cache"))  # its own cache: other tests extract the same corpus
    fast = ["protocol.per_class=2", "train.max_epochs=1"]
    first = serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=tmp_path, overrides=fast)
    assert first.data["cache"]["misses"] == 80 and first.data["cache"]["hits"] == 0

    def refuse(*args, **kwargs):
        raise AssertionError("the encoder ran although every feature is cached")

    monkeypatch.setattr(Fbank, "forward", refuse)
    second = serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=tmp_path, overrides=fast + ["downstream.hidden=64"])
    assert second.data["cache"] == {**first.data["cache"], "hits": 80, "misses": 0}


@pytest.mark.e2e
def test_cache_commands(tmp_path):
    env = {"SERBENCH_CACHE": str(tmp_path)}
    utts = _corpus(tmp_path / "audio", n=2)
    upstream = create("upstream", "fbank")
    extract(upstream, utts, CPU, (0,), _cache(tmp_path, upstream))
    listed = run_cli("cache", "ls", env=env)
    assert listed.returncode == 0 and "fbank" in listed.stdout and upstream.fingerprint() in listed.stdout
    du = run_cli("cache", "du", env=env)
    assert du.returncode == 0 and "2 entries" in du.stdout
    cleared = run_cli("cache", "clear", "--upstream", "tiny", env=env)
    assert "removed 0 cache folders" in cleared.stdout and len(scan(tmp_path)) == 1
    cleared = run_cli("cache", "clear", "--upstream", "fbank", env=env)
    assert "removed 1 cache folders" in cleared.stdout and scan(tmp_path) == []


def test_voice_activity_masks_are_kept_in_the_cache_and_read_back(tmp_path, monkeypatch):
    """A second process reads the masks instead of running webrtcvad again; they equal fresh ones."""
    from serbench.api.audio import load_audio
    from serbench.api.progress import Reporter
    from serbench.run import execute
    from serbench.run.plan import plan
    from serbench.run.request import RunRequest
    from serbench.run.vad import speech_frames

    monkeypatch.setenv("SERBENCH_CACHE", str(tmp_path / "cache"))
    the_plan = plan(RunRequest("fbank", "sap_gap", None, None, "synthetic", None, (0,), "cpu",
                    ["protocol.per_class=1"], recipe="shared"))
    first, _ = execute.load_inputs(execute.prepare(the_plan, tmp_path / "run"), [execute.Job("1", 0)], Reporter(quiet=True))
    stored = list((tmp_path / "cache" / "features").glob(f"*/vad-{first.vad_level}/*.npy"))
    assert len(stored) == len(first.vad_masks) > 0

    def no_vad(*args, **kwargs):
        raise AssertionError("webrtcvad ran although every mask is in the cache")

    monkeypatch.setattr(execute, "speech_frames", no_vad)
    second, _ = execute.load_inputs(execute.prepare(the_plan, tmp_path / "run"), [execute.Job("1", 0)], Reporter(quiet=True))
    for uid, mask in second.vad_masks.items():
        fresh = speech_frames(load_audio(second.protocol.utterances[uid].path), second.upstream.frame_rate,
                              len(mask), second.vad_level)
        assert np.array_equal(mask, fresh) and np.array_equal(mask, first.vad_masks[uid])


def test_an_audio_file_is_hashed_once_per_process_until_it_changes(tmp_path):
    path = tmp_path / "a.wav"
    tiny_wav(path, 0)
    first = audio_hash(path)
    assert audio_hash(path) == first
    tiny_wav(path, 1)  # other content: another size or modification time, so read again
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert audio_hash(path) != first
