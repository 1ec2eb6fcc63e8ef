"""Additive noise at a signal-to-noise ratio: generated white or pink noise, or a stretch of a
noise recording from a folder the user gives.

The SNR is the ratio of the utterance's mean power (over all its samples, silences included)
to the added noise's, in dB: the plugin's own choice (no speech-activity weighting, as in ITU-T
P.56, which would need a level meter); it is what the test measures on the output. A silent
utterance (zero power) is returned unchanged: no SNR is defined. Pink noise has a power
spectrum falling as 1/f, made by shaping white Gaussian noise in the frequency domain (the
DC bin set to zero). A noise file shorter than the utterance is repeated; the start is drawn
at random.
"""

from __future__ import annotations

import numpy as np

from serbench_plugins.perturbations.files import AudioFolder


def pink(size: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise whose power spectral density falls as 1/f (amplitude as 1/sqrt(f))."""
    spectrum = np.fft.rfft(rng.standard_normal(size))
    freqs = np.fft.rfftfreq(size)
    scale = np.zeros_like(freqs)
    scale[1:] = 1.0 / np.sqrt(freqs[1:])
    return np.fft.irfft(spectrum * scale, n=size)


def add_at_snr(wav: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``wav + g * noise`` with ``g`` such that mean(wav^2) / mean((g noise)^2) = 10^(snr/10)."""
    signal_power = float(np.mean(np.square(wav, dtype=np.float64)))
    noise_power = float(np.mean(np.square(noise, dtype=np.float64)))
    if signal_power == 0.0 or noise_power == 0.0:
        return wav
    gain = np.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (wav + gain * noise).astype(np.float32)


class AdditiveNoise:
    """Noise added at ``snr`` dB: ``color`` white or pink, or from the audio files in ``folder``."""

    def __init__(self, snr: float = 10.0, color: str = "white", folder: str = ""):
        self.snr, self.color = snr, color
        self.folder = AudioFolder(folder, "noise.folder") if folder else None

    def fingerprint(self) -> str:
        return self.folder.digest() if self.folder else ""

    def noise(self, size: int, rng: np.random.Generator) -> np.ndarray:
        if self.folder is not None:
            source = self.folder.pick(rng)
            repeated = np.tile(source, int(np.ceil((size + source.size) / source.size)))
            start = int(rng.integers(source.size))
            return repeated[start : start + size].astype(np.float64)
        return rng.standard_normal(size) if self.color == "white" else pink(size, rng)

    def __call__(self, wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return add_at_snr(wav, self.noise(wav.size, rng), self.snr)
