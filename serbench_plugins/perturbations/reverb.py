"""Reverberation: convolution with a room impulse response, synthetic or from a folder of
measured ones.

The synthetic response is Polack's statistical model (Polack 1993, *Applied Acoustics* 38:235):
a unit direct path followed by Gaussian noise under an exponential envelope that falls by 60 dB
in ``rt60`` seconds, its energy set by ``drr`` (the direct-to-reverberant ratio, dB); a room
simulator (pyroomacoustics) would add early reflections, which this model leaves out, the
plugin's own choice so that it needs nothing beyond numpy. The output keeps the input's length
(the tail past the end is cut) and its mean power (so that reverberation is not also a gain
change); a measured response is scaled likewise, whatever its level. A file's response starts
at its peak (the propagation delay before it is dropped).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

from serbench_plugins.perturbations.files import AudioFolder

SAMPLE_RATE = 16_000


def polack_rir(rt60: float, drr_db: float, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A unit impulse then noise * exp(-3 ln(10) t / rt60) (60 dB of energy lost in rt60 s),
    1.5 x rt60 long, with reverberant energy 10^(-drr/10)."""
    n = max(int(1.5 * rt60 * sample_rate), 2)
    t = np.arange(1, n) / sample_rate
    tail = rng.standard_normal(n - 1) * np.exp(-3.0 * np.log(10.0) * t / rt60)
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / np.sum(tail ** 2))
    return np.concatenate([[1.0], tail])


class Reverb:
    """Convolution with a Polack-model response (``rt60``, ``drr``), or one from ``folder``."""

    def __init__(self, rt60: float = 0.5, drr: float = 0.0, folder: str = ""):
        self.rt60, self.drr = rt60, drr
        self.folder = AudioFolder(folder, "reverb.folder") if folder else None

    def fingerprint(self) -> str:
        return self.folder.digest() if self.folder else ""

    def response(self, rng: np.random.Generator) -> np.ndarray:
        if self.folder is None:
            return polack_rir(self.rt60, self.drr, rng)
        rir = self.folder.pick(rng).astype(np.float64)
        return rir[int(np.argmax(np.abs(rir))):]

    def __call__(self, wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = wav.astype(np.float64)
        wet = fftconvolve(x, self.response(rng))[: x.size]
        power, wet_power = float(np.mean(x ** 2)), float(np.mean(wet ** 2))
        if wet_power > 0.0:
            wet *= np.sqrt(power / wet_power)
        return wet.astype(np.float32)
