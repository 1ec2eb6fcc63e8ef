"""Audio input: any soundfile-readable file to 16 kHz mono float32."""

from __future__ import annotations

import os
import struct
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from serbench.errors import SerbenchError

SAMPLE_RATE = 16_000


# container -> (byte order, the chunk that holds the samples); WAV (RIFF, big-endian RIFX) and AIFF
_SAMPLE_CHUNKS = {b"RIFF": ("<", b"data"), b"RIFX": (">", b"data"), b"FORM": (">", b"SSND")}
_UNKNOWN_LENGTH = 0xFFFFFFFF  # what a writer that cannot seek back (a pipe) leaves in a WAV header


def sample_bytes(path: Path) -> tuple[int, int] | None:
    """(bytes of samples a WAV or AIFF header declares, bytes the file holds after that header),
    or None for another format, or a header that declares no length. libsndfile quietly reads a
    truncated WAV or AIFF as a shorter file; these two numbers show the difference."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        head = file.read(12)
        if head[:4] not in _SAMPLE_CHUNKS or head[8:12] not in (b"WAVE", b"AIFF", b"AIFC"):
            return None
        order, wanted = _SAMPLE_CHUNKS[head[:4]]
        offset = 12
        while offset + 8 <= size:
            file.seek(offset)
            name, length = struct.unpack(f"{order}4sI", file.read(8))
            if name == wanted:
                return None if length == _UNKNOWN_LENGTH else (length, size - offset - 8)
            offset += 8 + length + (length & 1)  # chunks are padded to an even length
    return None


def audio_info(path: str | Path):
    """soundfile's header information (frames, sample rate, channels); a missing, unreadable or
    truncated file (a WAV or AIFF header declaring more samples than the file holds, or a FLAC
    file whose last frame cannot be reached) names itself, so that a damaged copy is refused
    before a run starts rather than read as shorter audio."""
    path = Path(path)
    if not path.is_file():
        raise SerbenchError(f"{path}: audio file not found")
    info = None
    try:
        declared = sample_bytes(path)
        info = sf.info(path)
        if info.format == "FLAC" and info.frames:
            with sf.SoundFile(path) as sound:  # FLAC's header counts its frames; a cut file has fewer
                sound.seek(info.frames - 1)
                reached = len(sound.read(1))
            if not reached:
                raise SerbenchError(f"{path}: truncated audio: its header declares {info.frames} frames and the last "
                                    "cannot be read (an interrupted copy?); copy the file again")
    except (sf.LibsndfileError, RuntimeError) as exc:
        if info is not None and info.format == "FLAC":
            raise SerbenchError(f"{path}: truncated or damaged audio: its header declares {info.frames} frames and "
                                f"reading to the last failed ({exc}); copy the file again") from None
        raise SerbenchError(f"{path}: cannot read audio ({exc})") from None
    except OSError as exc:
        raise SerbenchError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if declared is not None and declared[0] > declared[1]:
        raise SerbenchError(f"{path}: truncated audio: its header declares {declared[0]} bytes of samples and the "
                            f"file holds {declared[1]} (an interrupted copy?); copy the file again")
    return info


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
    audio_info(path)  # a truncated WAV or AIFF would otherwise be read as shorter audio
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
