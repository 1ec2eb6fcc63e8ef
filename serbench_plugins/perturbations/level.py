"""Level changes: a gain in dB, and hard clipping at a share of the utterance's peak.

Gain is applied as is (no limiting: samples may leave [-1, 1], as a float signal chain allows;
the telephone codec clips, this does not). Clipping is relative to each utterance's own peak so
that the same setting distorts a quiet and a loud recording alike: the plugin's own choice.
"""

from __future__ import annotations

import numpy as np


class Gain:
    """Multiply by 10^(db/20)."""

    def __init__(self, db: float = -6.0):
        self.factor = 10.0 ** (db / 20.0)

    def __call__(self, wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return (wav.astype(np.float64) * self.factor).astype(np.float32)


class Clip:
    """Hard clipping at ``level`` times the utterance's peak absolute amplitude."""

    def __init__(self, level: float = 0.5):
        self.level = level

    def __call__(self, wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        limit = self.level * float(np.max(np.abs(wav))) if wav.size else 0.0
        return np.clip(wav, -limit, limit).astype(np.float32)
