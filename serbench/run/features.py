"""Frozen-mode features: every hidden state of every utterance, from the cache or extracted.

Utterances still missing are sorted by length and batched under a total-audio budget so
padding stays small; upstreams whose padding would change their output (``batch_safe =
False``) get one utterance per batch, and so does every upstream on a CPU (:func:`batch_limit`).
Before any extraction the size of what will be written is estimated and refused past the
budget, with the layer selection as the way out. With a cache, each batch's hidden states are
written to it as soon as they are computed and returned as memory maps, so the memory an
extraction holds is set by the batch, not by the corpus, and an interrupted extraction keeps
what it finished.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import torch

from serbench.api.audio import load_utterance, utterance_frames
from serbench.api.errors import SerbenchError
from serbench.api.protocol import Utterance
from serbench.api.specs import Param
from serbench.api.upstream import Upstream
from serbench.run.cache import FeatureCache, human_bytes, utterance_hash
from serbench.run.conformance import FP16_MAX, check_upstream
from serbench.run.precision import autocast as precision_context
from serbench.run.precision import device_default

CACHE_PARAMS = (
    Param("enabled", bool, True, "reuse features across runs from $SERBENCH_CACHE"),
    Param("budget_gb", float, 100.0, "refuse to write more new features than this", bounds=">= 0"),
    Param("dtype", str, "float16", "storage precision", ("float16", "float32")),
)


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    bytes: int = 0


def keep_on_device(features: dict, device: torch.device, share: float = 0.5) -> dict:
    """On CUDA, move every feature to the GPU when together they take at most ``share`` of
    its free memory, so head training never copies features from the host; else unchanged."""
    if device.type != "cuda" or not features:
        return features
    free, _ = torch.cuda.mem_get_info(device)
    if sum(int(a.nbytes) for a in features.values()) > share * free:
        return features
    return {k: torch.from_numpy(np.ascontiguousarray(a)).to(device) for k, a in features.items()}


def select_layers(layers: Sequence[int], available: int, name: str) -> tuple[int, ...]:
    chosen = tuple(int(i) for i in layers) if layers else tuple(range(available))
    bad = [i for i in chosen if not 0 <= i < available]
    if bad:
        raise SerbenchError(
            f"-o upstream.layers: {bad[0]} is out of range ({name} has {available} hidden states: 0-{available - 1})"
        )
    return chosen


def num_samples(utterance: Utterance) -> int:
    frames, rate = utterance_frames(utterance)
    return int(round(frames * 16_000 / rate))


def length_batches(lengths: Sequence[int], max_samples: int, max_items: int = 64) -> list[list[int]]:
    """Indices grouped longest-first so that each padded batch holds at most ``max_samples``
    samples (a single longer utterance forms its own batch)."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    batches: list[list[int]] = []
    for index in order.tolist():
        if batches:
            current = batches[-1]
            longest = lengths[current[0]]
            if len(current) < max_items and longest * (len(current) + 1) <= max_samples:
                current.append(index)
                continue
        batches.append([index])
    return batches


def estimate_bytes(samples: Sequence[int], upstream: Upstream, layers: int, itemsize: int) -> int:
    frames = sum(n / upstream.sample_rate * upstream.frame_rate for n in samples)
    return int(frames * layers * upstream.dim * itemsize)


def _load_batch(utterances, batch, load=load_utterance):
    return [load(utterances[i]) for i in batch]


def batch_limit(upstream: Upstream, device: torch.device) -> int:
    """Most utterances per extraction batch. One where padding would change an upstream's output
    (``batch_safe = False``), and one on a CPU: there a single utterance's matrices already keep
    every core busy, so batching buys no speed, while each padded sample costs as much compute as
    a real one (26% more work over a 0.1 h IEMOCAP sample with 160 s batches) and the front-end's
    buffers grow with the batch (about 1 GB per layer for 160 s). Each utterance's features then
    depend on nothing else in the corpus. On a GPU, batches of up to 64 under the audio budget."""
    if device.type == "cpu" or not getattr(upstream, "batch_safe", True):
        return 1
    return 64


def _forward_batches(upstream, utterances, lengths, device, layers, batch_seconds, on_batch, name="", load=load_utterance,
                     peak_limit=FP16_MAX, dtype="float32", precision=""):
    """Yield one list per batch of (utterance, [layers, frames, dim] numpy in ``dtype``). The next
    batch's audio is decoded in a background thread while the encoder runs on this one."""
    upstream = upstream.to(device).eval()
    max_items = batch_limit(upstream, device)
    index = torch.tensor(layers)
    autocast = precision_context(precision or device_default(device), device)
    batches = length_batches(lengths, int(batch_seconds * 16_000), max_items)
    with ThreadPoolExecutor(max_workers=1) as decoder:
        pending = decoder.submit(_load_batch, utterances, batches[0], load) if batches else None
        for n, batch in enumerate(batches):
            wavs = pending.result()
            if n + 1 < len(batches):
                pending = decoder.submit(_load_batch, utterances, batches[n + 1], load)
            yield _encode(upstream, utterances, batch, wavs, device, index, autocast, name, peak_limit, dtype)
            if on_batch:
                on_batch(len(batch))


_TORCH_DTYPES = {"float16": torch.float16, "float32": torch.float32}


def _encode(upstream, utterances, batch, wavs, device, index, autocast, name="", peak_limit=FP16_MAX, dtype="float32"):
    """One batch's (utterance, features) pairs. The layer selection is skipped when it keeps every
    layer, and the conversion to the storage dtype is done by torch on the whole batch (on every
    core, on the GPU before the copy to the host); both round to nearest even as numpy does."""
    sizes = torch.tensor([w.size for w in wavs])
    padded = torch.zeros(len(wavs), int(sizes.max()))
    for row, wav in enumerate(wavs):
        padded[row, : wav.size] = torch.from_numpy(wav)
    with torch.inference_mode(), autocast:
        out = upstream(padded.to(device), sizes.to(device))
    check_upstream(out, upstream, len(wavs), name, peak_limit)
    hidden = out.hidden_states
    if index.tolist() != list(range(hidden.shape[0])):
        hidden = hidden.index_select(0, index.to(hidden.device))
    hidden = hidden.to(_TORCH_DTYPES[dtype]).cpu().numpy()
    return [(utterances[i], hidden[:, row, : int(out.lengths[row])]) for row, i in enumerate(batch)]


def _write_through(cache: FeatureCache, hashes: dict[str, str], batches, workers: int = 1) -> dict[str, np.ndarray]:
    """Store each batch in ``cache`` while the encoder computes the next one (``workers``
    background threads, one utterance each), never more than one batch behind: memory holds at
    most two batches' features, whatever the corpus. Returns ``{utterance id: memory map of its
    entry}``."""
    stored: dict[str, np.ndarray] = {}
    with ThreadPoolExecutor(max_workers=workers) as writer:
        behind: list = []
        for pairs in batches:
            stored.update((uid, future.result()) for uid, future in behind)
            behind = [(u.id, writer.submit(cache.store, hashes[u.id], array)) for u, array in pairs]
        stored.update((uid, future.result()) for uid, future in behind)
    return stored


def writer_threads(device: torch.device) -> int:
    """Threads that write cache entries. One beside a CPU's forward pass (which has every core);
    on a GPU, where a batch is computed faster than one thread can checksum and write it, up to
    8 (half the host's cores)."""
    return 1 if device.type == "cpu" else max(1, min(8, (os.cpu_count() or 2) // 2))


def _hold_lock(stack: ExitStack, cache: FeatureCache, name: str, missing: int) -> None:
    """Enter the cache's lock for one set of utterances on ``stack``, or refuse in one clear line
    when the folder cannot be written (a shared cache mounted read-only that lacks entries)."""
    try:
        stack.enter_context(cache.lock(name))
    except PermissionError as exc:
        raise SerbenchError(f"feature cache {cache.dir} cannot be written ({exc.strerror}) and lacks {missing} "
                            "entries: point SERBENCH_CACHE at a writable folder (or complete the shared cache)") from None
    except OSError as exc:
        if exc.errno != errno.EROFS:
            raise
        raise SerbenchError(f"feature cache {cache.dir} is on a read-only filesystem and lacks {missing} entries: "
                            "point SERBENCH_CACHE at a writable folder") from None


@torch.inference_mode()
def extract(
    upstream: Upstream,
    utterances: Sequence[Utterance],
    device: torch.device,
    layers: tuple[int, ...],
    cache: FeatureCache | None = None,
    budget_bytes: float = float("inf"),
    dtype: str = "float16",
    batch_seconds: float = 160.0,
    on_batch: Callable[[int], None] | None = None,
    name: str = "",
    load: Callable[[Utterance], np.ndarray] = load_utterance,
    precision: str = "",
) -> tuple[dict[str, np.ndarray], CacheStats]:
    """``{utterance id: [len(layers), frames, dim]}`` for every utterance, and what the cache
    contributed. Without a cache everything is extracted and kept in memory. ``name`` (the
    upstream's registered name) is how an output that breaks the contract is blamed. ``load``
    reads an utterance's waveform (a perturbed copy's, with a cache keyed by the perturbation).
    ``precision`` (``fp32`` or ``bf16``, serbench.run.precision; '' for the device's default) is
    the forward pass's; a cache must be keyed by it."""
    stats = CacheStats()
    features: dict[str, np.ndarray] = {}
    hashes = {u.id: utterance_hash(u) for u in utterances} if cache else {}
    # one lock per set of utterances: a second process on the same set waits and finds the
    # first's entries; disjoint sets (extraction shards) go side by side
    lock_name = hashlib.sha256(" ".join(sorted(hashes.values())).encode()).hexdigest()[:16]

    def take_hits(wanted: Sequence[Utterance]) -> list[Utterance]:
        missing = []
        for u in wanted:
            found = cache.load(hashes[u.id], u.id) if cache else None
            if found is None:
                missing.append(u)
            else:
                features[u.id] = found
                stats.hits += 1
                if on_batch:
                    on_batch(1)
        return missing

    missing = take_hits(utterances)  # hits need no lock: a complete cache may be read-only
    with ExitStack() as held:
        if cache and missing:
            _hold_lock(held, cache, lock_name, len(missing))
            missing = take_hits(missing)  # what another process stored while this one waited
        stats.misses = len(missing)
        lengths = [num_samples(u) for u in missing]
        itemsize = np.dtype(dtype).itemsize
        needed = estimate_bytes(lengths, upstream, len(layers), itemsize)
        if cache and needed > budget_bytes:
            raise SerbenchError(
                f"the feature cache would grow by about {human_bytes(needed)} ({len(missing)} utterances, "
                f"{len(layers)} layers x {upstream.dim} dims, {dtype}), over the budget of {human_bytes(budget_bytes)}: "
                "keep fewer layers with -o upstream.layers=[...], or raise -o cache.budget_gb=N"
            )
        peak_limit = FP16_MAX if dtype == "float16" else float("inf")  # float32 holds ComParE's energies
        batches = _forward_batches(upstream, missing, lengths, device, layers, batch_seconds, on_batch, name, load,
                                   peak_limit, dtype, precision)
        if cache:
            features.update(_write_through(cache, hashes, batches, writer_threads(device)))
        else:
            features.update((u.id, np.ascontiguousarray(array)) for pairs in batches for u, array in pairs)
    if cache:
        stats.bytes = sum(int(a.nbytes) for a in features.values())
    return features, stats
