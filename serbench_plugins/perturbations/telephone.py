"""A telephone channel: down to 8 kHz (everything above 4 kHz is gone), through a G.711-style
8-bit companding codec, and back up to 16 kHz.

Resampling uses scipy's polyphase filter (the same as serbench's audio loader). The codec is
the continuous companding law quantised to 8 bits, not G.711's segmented table: the plugin's
own choice (within a fraction of a dB of the table's signal-to-quantisation ratio), for the
mu-law (mu = 255, North America and Japan) and the A-law (A = 87.6, Europe) alike; ``codec=none``
keeps the band limit only. Samples beyond [-1, 1] are clipped before coding, as a codec does.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import resample_poly

MU = 255.0
A = 87.6


def mu_law_encode(x: np.ndarray, mu: float = MU) -> np.ndarray:
    """Integer codes 0..mu of ``x`` in [-1, 1]: F(x) = sign(x) ln(1 + mu|x|) / ln(1 + mu),
    then ``round((F + 1) / 2 * mu)``."""
    x = np.clip(x, -1.0, 1.0)
    companded = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return np.floor((companded + 1.0) / 2.0 * mu + 0.5).astype(np.int64)


def mu_law_decode(codes: np.ndarray, mu: float = MU) -> np.ndarray:
    """The inverse: y = 2 code / mu - 1, x = sign(y) ((1 + mu)^|y| - 1) / mu."""
    y = 2.0 * np.asarray(codes, dtype=np.float64) / mu - 1.0
    return np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu


def a_law_roundtrip(x: np.ndarray, a: float = A, levels: int = 255) -> np.ndarray:
    """A-law companding, 8-bit quantisation of the companded value, and expansion."""
    x = np.clip(x, -1.0, 1.0)
    ax = np.abs(x)
    log_a = 1.0 + np.log(a)
    small = ax < 1.0 / a
    companded = np.sign(x) * np.where(small, a * ax / log_a, (1.0 + np.log(np.maximum(a * ax, 1e-300))) / log_a)
    y = np.floor((companded + 1.0) / 2.0 * levels + 0.5) / levels * 2.0 - 1.0
    ay = np.abs(y)
    expanded = np.where(ay < 1.0 / log_a, ay * log_a / a, np.exp(ay * log_a - 1.0) / a)
    return np.sign(y) * expanded


class Telephone:
    """8 kHz band limit and an 8-bit companding codec (``codec``: mulaw, alaw or none)."""

    def __init__(self, codec: str = "mulaw"):
        self.codec = codec

    def __call__(self, wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        narrow = resample_poly(wav.astype(np.float64), 1, 2)
        if self.codec == "mulaw":
            narrow = mu_law_decode(mu_law_encode(narrow))
        elif self.codec == "alaw":
            narrow = a_law_roundtrip(narrow)
        wide = resample_poly(narrow, 2, 1)
        out = np.zeros(wav.size)
        out[: min(wav.size, wide.size)] = wide[: wav.size]
        return out.astype(np.float32)
