"""Extraction writes each batch to the cache as it goes, and its numbers are the encoder's own.

References: each utterance run alone through the upstream and converted by numpy (what the
cache held before the conversion moved into torch), and ``np.save`` plus hashlib for the bytes
of an entry."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
import torch

from serbench.api.audio import load_utterance
from serbench.api.protocol import Utterance
from serbench.run.cache import TRAILER, CacheKey, FeatureCache
from serbench.run.features import _encode, _write_through, batch_limit, extract, writer_threads
from serbench.run.registry import create

from lookalike import tiny_wav
from tiny_checkpoints import save_checkpoint

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def wavlm(tmp_path_factory):
    """A tiny WavLM with a layer-norm front-end: batch-safe, so a GPU would batch it."""
    return create("upstream", f"hf:{save_checkpoint(tmp_path_factory.mktemp('ckpt') / 'wavlm', 'wavlm_layer')}")


def _corpus(folder, seconds=(0.5, 1.3, 0.9, 2.0, 0.7)):
    out = []
    for k, s in enumerate(seconds):
        tiny_wav(folder / f"{k}.wav", seed=k, seconds=s)
        out.append(Utterance(id=f"u{k}", path=folder / f"{k}.wav", label="a", speaker="s"))
    return out


def _cache(root, upstream, layers):
    key = CacheKey("wavlm", upstream.fingerprint(), layers, "float16", upstream.dim, upstream.frame_rate)
    return FeatureCache(root, key)


def _alone(upstream, utterance, layers, dtype="float16"):
    wav = torch.from_numpy(load_utterance(utterance))[None]
    with torch.inference_mode():
        out = upstream(wav, torch.tensor([wav.shape[1]]))
    return out.hidden_states[list(layers), 0].numpy().astype(dtype)


@pytest.mark.parametrize("layers", [(0, 1, 2), (2, 0)])
def test_cached_features_are_the_encoder_run_on_each_utterance_alone(tmp_path, wavlm, layers):
    utts = _corpus(tmp_path / "audio")
    cached, stats = extract(wavlm, utts, CPU, layers, _cache(tmp_path / "cache", wavlm, layers))
    assert stats.misses == len(utts)
    for u in utts:
        assert isinstance(cached[u.id], np.memmap)  # served from the cache file, not held in memory
        reference = _alone(wavlm, u, layers)
        assert cached[u.id].dtype == np.float16 and cached[u.id].tobytes() == reference.tobytes()
    kept, _ = extract(wavlm, utts, CPU, layers, None)  # without a cache: the same bytes, in memory
    assert all(kept[u.id].tobytes() == cached[u.id].tobytes() for u in utts)


def test_an_interrupted_extraction_keeps_the_batches_it_finished(tmp_path, wavlm):
    utts = _corpus(tmp_path / "audio")
    cache = _cache(tmp_path / "cache", wavlm, (0, 1, 2))
    done = []

    def stop_after_two(n):
        done.append(n)
        if len(done) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract(wavlm, utts, CPU, (0, 1, 2), cache, on_batch=stop_after_two)
    assert len(list(cache.dir.glob("*/*.npy"))) == 2  # one utterance per batch on a CPU, longest first
    again, stats = extract(wavlm, utts, CPU, (0, 1, 2), cache)
    assert (stats.hits, stats.misses) == (2, 3)
    longest = sorted(utts, key=lambda u: -load_utterance(u).size)[:2]
    for u in longest:  # the two that were written before the interruption, whole and correct
        assert again[u.id].tobytes() == _alone(wavlm, u, (0, 1, 2)).tobytes()


def test_a_padded_batch_gives_each_row_its_own_frames_in_the_storage_dtype(wavlm, tmp_path):
    # the GPU path (several utterances per batch): rows cut to their lengths, converted as numpy would
    utts = _corpus(tmp_path / "audio", seconds=(1.0, 0.6, 0.8))
    wavs = [load_utterance(u) for u in utts]
    off = torch.autocast("cpu", enabled=False)
    pairs = _encode(wavlm, utts, [0, 1, 2], wavs, CPU, torch.tensor([2, 1]), off, dtype="float16")
    padded = torch.zeros(3, max(w.size for w in wavs))
    for row, w in enumerate(wavs):
        padded[row, : w.size] = torch.from_numpy(w)
    with torch.inference_mode():
        out = wavlm(padded, torch.tensor([w.size for w in wavs]))
    for row, (u, array) in enumerate(pairs):
        n = int(out.lengths[row])
        assert u is utts[row] and array.shape == (2, n, wavlm.dim)
        assert array.tobytes() == out.hidden_states[[2, 1], row, :n].numpy().astype(np.float16).tobytes()


def test_torch_rounds_to_float16_exactly_as_numpy():
    rng = np.random.default_rng(0)
    values = np.concatenate([  # every binade float16 holds, its subnormals, its edges, and ties
        (rng.standard_normal(1_000_000) * 10.0 ** rng.integers(-9, 5, 1_000_000)).astype(np.float32),
        np.array([65504, 65519.99, -65504, 6e-8, 3e-8, 1e-45, 0.0, -0.0, 1 + 2**-11, 1 + 3 * 2**-11], np.float32),
    ])
    assert values.dtype == np.float32
    assert torch.from_numpy(values).to(torch.float16).numpy().tobytes() == values.astype(np.float16).tobytes()


def test_an_entry_is_numpys_bytes_followed_by_their_checksum(tmp_path):
    array = np.random.default_rng(1).standard_normal((3, 7000, 40)).astype(np.float16)
    FeatureCache.write_array(tmp_path / "e.npy", array)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    expected = buffer.getvalue()
    written = (tmp_path / "e.npy").read_bytes()
    assert written == expected + TRAILER + hashlib.blake2b(expected, digest_size=16).digest()
    big = np.arange(5_000_000, dtype=np.float32).reshape(5, -1)  # 20 MB: more than one of numpy's chunks
    FeatureCache.write_array(tmp_path / "big.npy", big)
    back, problem = FeatureCache.read_array(tmp_path / "big.npy")
    assert problem == "" and np.array_equal(back, big)


def test_one_utterance_per_batch_on_a_cpu_or_where_padding_leaks(wavlm):
    assert batch_limit(wavlm, CPU) == 1
    assert batch_limit(wavlm, torch.device("cuda")) == 64  # a device object: no GPU needed

    class Leaky:
        batch_safe = False

    assert batch_limit(Leaky(), torch.device("cuda")) == 1


def test_several_writer_threads_store_every_entry_of_every_batch(tmp_path):
    # the GPU's setting (writer_threads > 1): each utterance's entry whole, under its own hash
    rng = np.random.default_rng(2)
    key = CacheKey("x", "fp", (0, 1), "float16", 8, 50.0)
    cache = FeatureCache(tmp_path, key)
    utts = [Utterance(id=f"u{k}", path=tmp_path / f"{k}.wav", label="a", speaker="s") for k in range(7)]
    arrays = {u.id: rng.standard_normal((2, 10 + k, 8)).astype(np.float16) for k, u in enumerate(utts)}
    batches = [[(u, arrays[u.id]) for u in utts[i : i + 3]] for i in range(0, 7, 3)]
    hashes = {u.id: f"{k:02d}" + "ab" * 15 for k, u in enumerate(utts)}
    stored = _write_through(cache, hashes, iter(batches), workers=3)
    assert sorted(stored) == sorted(arrays)
    for uid, array in arrays.items():
        assert np.array_equal(stored[uid], array) and np.array_equal(cache.load(hashes[uid]), array)
    assert writer_threads(CPU) == 1 and writer_threads(torch.device("cuda")) >= 1
