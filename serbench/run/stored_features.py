"""Cached features held as where they lie on disk, not as memory maps.

:meth:`serbench.run.cache.FeatureCache.load` returns each entry memory-mapped. A page of a map
that was read once stays counted in the process's resident memory for as long as the map
lives, so a head trained over a dict of maps grows, epoch by epoch, to the size of the whole
corpus (the file-backed part of RSS), and every live map holds a file descriptor and one
``/proc/self/maps`` entry. :func:`release_maps` swaps each map for a :class:`StoredArray`
(file, byte offset, shape, dtype) and lets the map go; the batcher reads only the frames a
batch needs, with ordinary reads into a fresh buffer, so what stays resident is the model and
one batch, whatever the corpus size. Re-reading a page is served from the kernel's page cache
(shared, reclaimable, outside the process's RSS). The bytes read are the bytes the map held:
batches are identical.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from serbench.api.errors import SerbenchError


@dataclass(frozen=True)
class StoredArray:
    """A C-ordered ``[layers, frames, dim]`` array at byte ``offset`` of the ``.npy`` file ``path``."""

    path: str
    offset: int
    shape: tuple[int, ...]
    dtype: np.dtype

    @classmethod
    def of(cls, mapped: np.memmap) -> StoredArray:
        return cls(os.fspath(mapped.filename), int(mapped.offset), tuple(mapped.shape), np.dtype(mapped.dtype))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def read(self, frames: int = 0) -> np.ndarray:
        """The array, or its first ``frames`` frames of every layer (0: all), read from the file."""
        layers, total, dim = self.shape
        frames = min(frames, total) if frames else total
        out = np.empty((layers, frames, dim), dtype=self.dtype)
        stride = total * dim * self.dtype.itemsize  # bytes per layer on disk
        try:
            with open(self.path, "rb", buffering=0) as handle:
                if frames == total:
                    _read_exactly(handle, self.offset, memoryview(out).cast("B"), self.path)
                else:  # the first frames of each layer: one read per layer
                    for layer in range(layers):
                        _read_exactly(handle, self.offset + layer * stride, memoryview(out[layer]).cast("B"), self.path)
        except OSError as exc:
            raise SerbenchError(f"feature cache entry {self.path} cannot be read ({exc.strerror or exc}): it was "
                                "removed or moved while the run used it; run again to rebuild it") from None
        return out

    def __array__(self, dtype=None, copy=None):  # np.asarray(stored): the whole array, read now
        array = self.read()
        return array if dtype is None else array.astype(dtype, copy=False)


def _read_exactly(handle, offset: int, into: memoryview, path: str) -> None:
    handle.seek(offset)
    done = 0
    while done < len(into):
        got = handle.readinto(into[done:])
        if not got:
            raise SerbenchError(f"feature cache entry {path} ends {len(into) - done} bytes early: it was truncated "
                                "while the run used it; run again to rebuild it")
        done += got


def is_whole_map(array) -> bool:
    """True for an array that is a whole memory-mapped file region as ``np.load(mmap_mode=...)``
    returns it (C order), the case :class:`StoredArray` can stand for; views and other arrays are not."""
    return (isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap) and array.flags.c_contiguous
            and array.ndim == 3 and array.filename is not None)


def release_maps(features: Mapping[str, object] | None) -> dict | None:
    """``features`` with every whole memory map replaced by its :class:`StoredArray` (the maps
    themselves are dropped when the caller drops ``features``); other values unchanged."""
    if features is None:
        return None
    return {uid: StoredArray.of(a) if is_whole_map(a) else a for uid, a in features.items()}


def frames_of(array, frames: int = 0):
    """The first ``frames`` frames of every layer of a feature array (0: all), read into memory
    when it is a :class:`StoredArray`, a view otherwise."""
    if isinstance(array, StoredArray):
        return array.read(frames)
    return array[:, :frames] if frames else array
