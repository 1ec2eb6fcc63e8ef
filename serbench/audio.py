"""Audio input: any soundfile-readable file to 16 kHz mono float32."""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from serbench.errors import SerbenchError

SAMPLE_RATE = 16_000


def audio_info(path: str | Path):
    """soundfile's header information (frames, sample rate, channels); a missing or
    unreadable file names itself."""
    path = Path(path)
    if not path.is_file():
        raise SerbenchError(f"{path}: audio file not found")
    try:
        return sf.info(path)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise SerbenchError(f"{path}: cannot read audio ({exc})") from None


def check_readable(paths) -> None:
    """Every file's header readable and at least one sample long (a run checks this before its
    run directory exists; a header costs microseconds beside hashing or decoding the audio)."""
    for path in paths:
        if audio_info(path).frames == 0:
            raise SerbenchError(f"{path}: audio file has no samples")


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read ``path`` as mono float32 at ``sample_rate``; channels are averaged and other
    rates resampled with a polyphase filter. A missing or unreadable file names itself."""
    path = Path(path)
    if not path.is_file():
        raise SerbenchError(f"{path}: audio file not found")
    try:
        wav, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise SerbenchError(f"{path}: cannot read audio ({exc})") from None
    wav = wav.mean(axis=1)
    if wav.size == 0:
        raise SerbenchError(f"{path}: audio file has no samples")
    if not np.isfinite(wav).all():
        raise SerbenchError(f"{path}: audio has non-finite samples (NaN or infinity)")
    if rate != sample_rate:
        g = gcd(rate, sample_rate)
        wav = resample_poly(wav, sample_rate // g, rate // g).astype(np.float32)
    return np.ascontiguousarray(wav, dtype=np.float32)
