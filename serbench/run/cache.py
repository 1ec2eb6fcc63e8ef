"""The on-disk feature cache: each utterance goes through a frozen encoder once, ever.

An entry is keyed by the upstream's weights fingerprint, the layer selection, the dtype and the
extraction precision where it is not the device's default (one folder per combination, with a ``meta.json``) and by a hash of the audio file's bytes
(and of the segment's times for an utterance that is a stretch of a longer file: :func:`utterance_hash`;
one ``.npy`` per utterance, memory-mapped when read). A changed audio file has another hash,
so its old entry is simply never read again. Entries are written atomically, each followed by
a trailer holding a checksum of its bytes (:data:`TRAILER`; numpy reads the array and ignores
it): an entry that is truncated, zero-filled, edited, unreadable or of the wrong shape is
never served as a hit but reported with a warning naming it, deleted and rebuilt. A file lock per folder makes two runs
sharing the cache take turns instead of extracting the same utterances twice (serbench.report.locks).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serbench.api.atomic import temporary, write_json
from serbench.report import locks

FORMAT_VERSION = 2  # 2: entries end with a checksum trailer
TRAILER = b"serbench-blake2b:"  # then the 16-byte blake2b digest of the bytes before the trailer
TRAILER_SIZE = len(TRAILER) + 16

log = logging.getLogger("serbench")


def human_bytes(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"


_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> hash, for this process


def audio_hash(path: Path) -> str:
    """Content hash of an audio file (its bytes, header included). Read once per process:
    extraction, the voice-activity cache and the check for missing features all key on it,
    and a file changed since (another size or modification time) is read again."""
    info = os.stat(path)
    key = (os.fspath(path), info.st_size, info.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def utterance_hash(utterance) -> str:
    """The cache identity of an utterance's audio: :func:`audio_hash` of its file for a whole
    file (unchanged, so existing entries stay hits), else a hash of the file's hash and the
    segment's start and end, so that each stretch of a long recording is extracted, cached and
    checked as its own audio."""
    whole = audio_hash(utterance.path)
    if utterance.segment is None:
        return whole
    start, end = utterance.segment
    return hashlib.blake2b(json.dumps([whole, start, end]).encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class CacheKey:
    upstream: str
    fingerprint: str
    layers: tuple[int, ...]
    dtype: str
    dim: int
    frame_rate: float
    version: str = "1"  # the upstream plugin's Spec version: bumping it means its output changed
    perturbation: str = ""  # the fingerprint of a perturbed copy of the audio (serbench.run.perturb); "" for clean
    precision: str = ""  # the extraction precision when not the device's default (serbench.run.precision.cache_field)

    @property
    def folder_name(self) -> str:
        """The first 16 hex digits of the SHA-256 of the JSON list ``[format, fingerprint, layers,
        dtype, version]``, then ``perturbation`` and ``{"precision": p}`` appended only when set:
        clean features at the device's default precision keep the names they had."""
        parts = [FORMAT_VERSION, self.fingerprint, list(self.layers), self.dtype, self.version]
        if self.perturbation:
            parts.append(self.perturbation)
        if self.precision:
            parts.append({"precision": self.precision})
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


class FeatureCache:
    """One folder of entries for one (weights, layers, dtype)."""

    def __init__(self, root: Path, key: CacheKey):
        self.key = key
        self.dir = Path(root) / "features" / key.folder_name
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = self.dir / "meta.json"
        if not meta.exists():
            write_json(meta, {"format": FORMAT_VERSION, **key.__dict__, "layers": list(key.layers)})

    def path(self, content: str) -> Path:
        return self.dir / content[:2] / f"{content}.npy"

    def load(self, content: str, label: str = "") -> np.ndarray | None:
        """The entry, memory-mapped; None when absent or damaged (a damaged one is reported,
        naming ``label``, the utterance it belongs to, and removed)."""
        path = self.path(content)
        if not path.exists():
            return None
        array, problem = self.read_array(path, mmap=True)
        if array is not None:
            layers, dim = len(self.key.layers), self.key.dim
            if array.ndim != 3 or array.shape[0] != layers or array.shape[2] != dim:
                problem = f"shape {array.shape}, expected ({layers} layers, frames, {dim} dims)"
            elif array.dtype != np.dtype(self.key.dtype):
                problem = f"dtype {array.dtype}, expected {self.key.dtype}"
        if problem:
            log.warning(f"feature cache entry {path}{f' (utterance {label})' if label else ''}: {problem}; "
                        "computed again")
            with contextlib.suppress(OSError):  # a read-only cache keeps it; it is rebuilt elsewhere
                path.unlink(missing_ok=True)
            return None
        return array

    @staticmethod
    def read_array(path: Path, mmap: bool = False) -> tuple[np.ndarray | None, str]:
        """(array, '') when ``path`` holds the whole entry :meth:`write_array` wrote (its checksum
        trailer agrees), else (None, what is wrong)."""
        digest = hashlib.blake2b(digest_size=16)
        try:
            size = path.stat().st_size
            with open(path, "rb") as handle:
                left = size - TRAILER_SIZE
                while left > 0:
                    block = handle.read(min(left, 1 << 20))
                    if not block:
                        break
                    digest.update(block)
                    left -= len(block)
                trailer = handle.read(TRAILER_SIZE)
        except OSError as exc:
            return None, f"unreadable ({exc.strerror or exc})"
        if size < TRAILER_SIZE or trailer[: len(TRAILER)] != TRAILER:
            return None, f"no checksum trailer ({size} bytes: truncated, overwritten or not written by serbench)"
        if trailer[len(TRAILER):] != digest.digest():
            return None, "checksum differs (damaged or zero-filled)"
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False), ""
        except (ValueError, OSError, EOFError) as exc:
            return None, f"not a readable array ({exc})"

    def store(self, content: str, array: np.ndarray) -> np.ndarray:
        path = self.path(content)
        self.write_array(path, np.ascontiguousarray(array, dtype=self.key.dtype))
        return np.load(path, mmap_mode="r")

    @staticmethod
    def write_array(path: Path, array: np.ndarray) -> None:
        """Write ``array`` to ``path`` atomically (a reader sees the old file or the whole new one),
        followed by the checksum trailer :meth:`read_array` checks. The bytes are hashed as numpy
        writes them, in its 16 MiB chunks: no second copy of the entry is made in memory."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = temporary(path, ".npy.tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                hashing = _HashingWriter(handle)
                np.lib.format.write_array(hashing, np.asanyarray(array), allow_pickle=False)
                handle.write(TRAILER + hashing.digest.digest())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def lock(self, name: str = "all") -> AbstractContextManager[None]:
        """Held while extracting one set of utterances (``name`` identifies the set): two
        processes on the same set take turns, so the second finds the first's entries; shards
        (disjoint sets) extract side by side."""
        return locks.exclusive(self.dir / "locks" / f"{name}.lock")


class _HashingWriter:
    """A write-only file object that passes bytes on to ``handle`` and hashes them on the way
    (numpy's ``write_array`` writes a non-OS file in bounded chunks)."""

    def __init__(self, handle):
        self.handle = handle
        self.digest = hashlib.blake2b(digest_size=16)

    def write(self, data) -> int:
        self.digest.update(data)
        return self.handle.write(data)


@dataclass
class CacheEntry:
    """One cache folder as ``serbench cache ls`` shows it."""

    folder: Path
    meta: dict
    entries: int
    bytes: int


def scan(root: Path) -> list[CacheEntry]:
    found = []
    base = Path(root) / "features"
    if not base.is_dir():
        return found
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        try:
            meta = json.loads((folder / "meta.json").read_text())
        except (OSError, json.JSONDecodeError):
            meta = {"upstream": "?", "fingerprint": "(no readable meta.json)"}
        files = list(folder.glob("*/*.npy"))
        found.append(CacheEntry(folder, meta, len(files), sum(f.stat().st_size for f in files)))
    return found


def clear(root: Path, upstream: str | None = None) -> list[CacheEntry]:
    """Remove every cache folder, or those of one upstream name; returns what was removed."""
    removed = [e for e in scan(root) if upstream is None or e.meta.get("upstream") == upstream]
    for entry in removed:
        shutil.rmtree(entry.folder)
    return removed
