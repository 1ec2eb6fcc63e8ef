"""Cached features read batch by batch (serbench.run.stored_features): the batches equal those
built from arrays read whole with np.load, and iterating an epoch keeps no mapping of the cache."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from serbench.api.batch import bucketed
from serbench.api.errors import SerbenchError
from serbench.api.protocol import Utterance
from serbench.run.batching import FeatureBatcher
from serbench.run.cache import CacheKey, FeatureCache
from serbench.run.stored_features import StoredArray, is_whole_map, release_maps

LAYERS, DIM = 3, 8
CLASSES = ("ang", "hap", "neu", "sad")


def _cache_with(root: Path, count: int, seed: int = 0) -> tuple[FeatureCache, dict[str, str], dict[str, Utterance]]:
    """``count`` float16 entries of 1-40 frames: (cache, {id: content hash}, {id: utterance})."""
    cache = FeatureCache(root, CacheKey("synthetic", "fp", tuple(range(LAYERS)), "float16", DIM, 50.0))
    rng = np.random.default_rng(seed)
    hashes, utterances = {}, {}
    for k in range(count):
        uid, content = f"u{k:04d}", f"{k:032x}"
        array = rng.standard_normal((LAYERS, int(rng.integers(1, 41)), DIM)).astype(np.float16)
        FeatureCache.write_array(cache.path(content), array)
        hashes[uid] = content
        utterances[uid] = Utterance(id=uid, path=root / f"{uid}.wav", label=CLASSES[k % 4], speaker=f"s{k % 3}")
    return cache, hashes, utterances


def _reference_batch(arrays: list[np.ndarray], max_frames: int) -> np.ndarray:
    """Padding by hand, from arrays read whole (no memory map, no serbench code)."""
    cut = [a[:, :max_frames] if max_frames else a for a in arrays]
    longest = max(a.shape[1] for a in cut)
    out = np.zeros((len(cut), LAYERS, longest, DIM), dtype=np.float32)
    for row, a in enumerate(cut):
        out[row, :, : a.shape[1]] = a.astype(np.float32)
    return out


@pytest.mark.parametrize("max_frames", [0, 7])
def test_batches_over_stored_features_equal_whole_arrays(tmp_path, max_frames):
    cache, hashes, utterances = _cache_with(tmp_path, 40)
    mapped = {uid: cache.load(content, uid) for uid, content in hashes.items()}
    assert all(is_whole_map(a) for a in mapped.values())
    stored = release_maps(mapped)
    assert all(isinstance(a, StoredArray) for a in stored.values())
    whole = {uid: np.load(cache.path(content), allow_pickle=False) for uid, content in hashes.items()}
    vad = {uid: np.arange(a.shape[1]) % 3 != 0 for uid, a in whole.items()}
    new = FeatureBatcher(stored, utterances, CLASSES, vad=vad, max_frames=max_frames)
    old = FeatureBatcher(whole, utterances, CLASSES, vad=vad, max_frames=max_frames)
    ids = list(hashes)
    assert new.lengths(ids) == old.lengths(ids)
    for chunk in bucketed(ids, new.lengths(ids), 6, torch.Generator().manual_seed(1), 2):
        got, expected = new(chunk, train=True), old(chunk, train=True)
        reference = _reference_batch([whole[i] for i in chunk], max_frames)
        assert np.array_equal(got["features"].numpy(), reference)  # float32 values, bit for bit
        for key in ("features", "lengths", "mask", "labels", "vad"):
            assert torch.equal(got[key], expected[key]), key


def test_stored_array_reads_what_numpy_reads(tmp_path):
    cache, hashes, _ = _cache_with(tmp_path, 3)
    content = hashes["u0002"]
    stored = StoredArray.of(cache.load(content))
    reference = np.load(cache.path(content), allow_pickle=False)
    assert stored.shape == reference.shape and stored.nbytes == reference.nbytes
    assert np.array_equal(np.asarray(stored), reference)
    assert np.array_equal(stored.read(2), reference[:, :2])
    assert np.array_equal(np.ascontiguousarray(stored, dtype=np.float32), reference.astype(np.float32))


def test_views_and_plain_arrays_are_left_alone(tmp_path):
    cache, hashes, _ = _cache_with(tmp_path, 2)
    mapped = cache.load(hashes["u0000"])
    plain = np.zeros((LAYERS, 4, DIM), dtype=np.float16)
    kept = release_maps({"view": mapped[:, :1], "plain": plain})
    assert kept["plain"] is plain and not isinstance(kept["view"], StoredArray)
    assert release_maps(None) is None


def _mappings_of(folder: Path) -> list[str]:
    """Lines of /proc/self/maps for files under ``folder`` (the process's live mappings of it)."""
    text = Path("/proc/self/maps").read_text()
    return [line for line in text.splitlines() if str(folder) in line]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_an_epoch_keeps_no_mapping_of_the_cache(tmp_path):
    cache, hashes, utterances = _cache_with(tmp_path, 300)
    mapped = {uid: cache.load(content, uid) for uid, content in hashes.items()}
    assert len(_mappings_of(cache.dir)) >= 300  # the seam sees memory maps: one per loaded entry
    stored = release_maps(mapped)
    del mapped
    assert _mappings_of(cache.dir) == []
    batcher = FeatureBatcher(stored, utterances, CLASSES)
    ids = list(hashes)
    most = 0
    for chunk in bucketed(ids, batcher.lengths(ids), 16, torch.Generator().manual_seed(0), 4):
        batcher(chunk, train=True)
        most = max(most, len(_mappings_of(cache.dir)))
    assert most == 0


def test_an_entry_cut_short_after_loading_is_named(tmp_path):
    cache, hashes, _ = _cache_with(tmp_path, 1)
    path = cache.path(hashes["u0000"])
    stored = StoredArray.of(cache.load(hashes["u0000"]))
    path.write_bytes(path.read_bytes()[: stored.offset + 10])
    with pytest.raises(SerbenchError, match=str(path)):
        stored.read()
    path.unlink()
    with pytest.raises(SerbenchError, match="cannot be read"):
        stored.read()
