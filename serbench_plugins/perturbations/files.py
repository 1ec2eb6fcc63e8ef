"""A folder of user-supplied audio (noise recordings, room impulse responses): the files a
perturbation draws from, listed once in a fixed order, and a digest of their bytes that goes
into the perturbation's fingerprint, so the feature cache never serves features of other files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from serbench.api.audio import load_audio
from serbench.api.errors import SerbenchError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")


class AudioFolder:
    """The audio files directly in ``folder`` (sorted by name), loaded at 16 kHz on first use."""

    def __init__(self, folder: str, option: str):
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise SerbenchError(f"{option}={folder}: not a folder")
        self.files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        if not self.files:
            raise SerbenchError(f"{option}={folder}: holds no audio file ({', '.join(AUDIO_SUFFIXES)})")
        self._loaded: dict[int, np.ndarray] = {}

    def digest(self) -> str:
        """Names and content hashes of every file: another file, or an edited one, is another perturbation."""
        parts = [f"{p.name}:{hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest()}" for p in self.files]
        return hashlib.blake2b("\n".join(parts).encode(), digest_size=8).hexdigest()

    def pick(self, rng: np.random.Generator) -> np.ndarray:
        index = int(rng.integers(len(self.files)))
        if index not in self._loaded:
            self._loaded[index] = load_audio(self.files[index])
        return self._loaded[index]
