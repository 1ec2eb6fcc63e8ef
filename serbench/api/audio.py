"""Audio input: any soundfile-readable file to 16 kHz mono float32."""

from __future__ import annotations

import os
import struct
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from serbench.api.errors import SerbenchError

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
    before a run starts rather than read as shorter audio. A header is read once per process (a
    long recording listed as thousands of segments is checked once), again when the file changes."""
    path = Path(path)
    if not path.is_file():
        raise SerbenchError(f"{path}: audio file not found")
    stat = path.stat()
    key = (os.fspath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _INFOS:
        _INFOS[key] = _checked_info(path)
    return _INFOS[key]


_INFOS: dict[tuple[str, int, int], object] = {}  # (path, size, mtime_ns) -> header, for this process


def _checked_info(path: Path):
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


def segment_frames(start: float, end: float, rate: int) -> tuple[int, int]:
    """The frames [first, stop) of the stretch ``start``-``end`` seconds of a file sampled at
    ``rate``: ``int(seconds * rate)`` at both ends, EmoBox's rule (its ``read_wav``), so that a
    segment holds the samples EmoBox's own loader reads and adjacent segments tile the file."""
    return int(start * rate), int(end * rate)


def _span(utterance):
    """(first frame, stop frame, header) of an utterance's audio in its file; a segment reaching
    past the file's last sample is refused naming the file and the line that listed it: reading
    it would yield shorter audio than the corpus says, or none."""
    info = audio_info(utterance.path)
    if utterance.segment is None:
        return 0, info.frames, info
    first, stop = segment_frames(*utterance.segment, info.samplerate)
    if stop > info.frames:
        raise SerbenchError(f"{utterance.where}: segment {utterance.start}-{utterance.end} s ends past the file's "
                            f"end ({info.frames / info.samplerate:.3f} s); check its times")
    return first, stop, info


def utterance_frames(utterance) -> tuple[int, int]:
    """(frames, sample rate) of an utterance's audio as stored: the whole file's, or its
    segment's (``end - start`` seconds)."""
    first, stop, info = _span(utterance)
    return stop - first, info.samplerate


def check_readable(utterances) -> None:
    """Every utterance's file header readable and its audio (the file, or its segment) at least
    one sample long and inside the file (a run checks this before its run directory exists; a
    header costs microseconds beside hashing or decoding the audio)."""
    for utterance in utterances:
        if utterance_frames(utterance)[0] == 0:
            raise SerbenchError(f"{utterance.where if utterance.segment else utterance.path}: audio "
                                f"{'segment' if utterance.segment else 'file'} has no samples")


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read ``path`` as mono float32 at ``sample_rate``; channels are averaged and other
    rates resampled with a polyphase filter. A missing or unreadable file names itself."""
    path = Path(path)
    audio_info(path)  # a truncated WAV or AIFF would otherwise be read as shorter audio
    return _read(path, sample_rate)


def load_utterance(utterance, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """An utterance's audio as :func:`load_audio` gives it: the whole file, or only its
    segment's frames (read with soundfile's start/stop, so a long recording is never decoded
    whole for each of its utterances)."""
    if utterance.segment is None:
        return load_audio(utterance.path, sample_rate)
    first, stop, _ = _span(utterance)
    return _read(Path(utterance.path), sample_rate, first, stop, utterance.where)


def _read(path: Path, sample_rate: int, start: int = 0, stop: int | None = None, name: str = "") -> np.ndarray:
    """Frames [start, stop) of ``path``, mono float32 at ``sample_rate``; errors name ``name``
    (default: the file)."""
    name = name or str(path)
    try:
        wav, rate = sf.read(path, start=start, stop=stop, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise SerbenchError(f"{name}: cannot read audio ({exc})") from None
    wav = wav.mean(axis=1)
    if wav.size == 0:
        raise SerbenchError(f"{name}: audio {'segment' if stop is not None else 'file'} has no samples")
    if not np.isfinite(wav).all():
        raise SerbenchError(f"{name}: audio has non-finite samples (NaN or infinity)")
    if rate != sample_rate:
        g = gcd(rate, sample_rate)
        wav = resample_poly(wav, sample_rate // g, rate // g).astype(np.float32)
    return np.ascontiguousarray(wav, dtype=np.float32)
