"""A seeded source-filter generator of speech-like audio with acted-emotion prosody.

Voiced syllables are a glottal pulse train (pitch contour with jitter) shaped by a spectral
tilt filter and a lip-radiation difference, then passed through three formant resonators of
a randomly chosen vowel; words are separated by pauses. Emotions move pitch level and range,
loudness, tempo, pause rate and spectral tilt in the directions reported for acted emotional
speech (angry: loud, fast, flat tilt; sad: quiet, slow, low and flat pitch, steep tilt;
happy: high and wide pitch; neutral in between). Speakers differ in base pitch, vocal-tract
length (formant scale), loudness and expressiveness, so emotion has to be told apart across
speakers, as in a real corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def lfilter(b, a, x):
    """scipy's IIR filter, imported when audio is made (not when the protocol is listed)."""
    from scipy.signal import lfilter as scipy_lfilter

    return scipy_lfilter(b, a, x)

SAMPLE_RATE = 16_000
VOWELS = {  # F1, F2, F3 in Hz for an adult male vocal tract
    "a": (730, 1090, 2440),
    "e": (530, 1840, 2480),
    "i": (270, 2290, 3010),
    "o": (570, 840, 2410),
    "u": (300, 870, 2240),
}
BANDWIDTHS = (80.0, 100.0, 130.0)
WORDS = (
    "table window river paper garden morning yellow number letter station "
    "kitchen doctor picture market silver orange pocket bottle corner weekend"
).split()


@dataclass(frozen=True)
class Prosody:
    pitch: float  # multiplier on the speaker's base f0
    pitch_range: float  # relative f0 excursion
    loudness_db: float
    tempo: float  # syllables per second, relative
    tilt: float  # > 0 flatter spectrum (more high-frequency energy)
    pause: float  # probability of a long pause between words
    valence: float  # 1-5 annotation means, as IEMOCAP's evaluators would give
    arousal: float
    dominance: float


EMOTIONS = {
    "neu": Prosody(1.00, 0.08, 0.0, 1.00, 0.0, 0.25, 3.0, 2.6, 2.8),
    "hap": Prosody(1.40, 0.35, 3.0, 1.10, 0.30, 0.15, 4.0, 3.3, 3.1),
    "ang": Prosody(1.15, 0.12, 10.0, 1.25, 1.10, 0.08, 1.9, 3.8, 3.8),
    "sad": Prosody(0.85, 0.04, -6.0, 0.75, -0.60, 0.45, 2.0, 2.2, 2.3),
}
NEUTRAL = EMOTIONS["neu"]


@dataclass(frozen=True)
class Speaker:
    id: str  # "01F"
    gender: str
    f0: float
    formant_scale: float
    gain_db: float
    expressiveness: float  # how far this speaker moves from neutral (0..1)


def make_speaker(session: int, gender: str, rng: np.random.Generator) -> Speaker:
    female = gender == "F"
    return Speaker(
        id=f"{session:02d}{gender}",
        gender=gender,
        f0=rng.uniform(180, 240) if female else rng.uniform(95, 140),
        formant_scale=rng.uniform(1.10, 1.20) if female else rng.uniform(0.95, 1.03),
        gain_db=rng.uniform(-2.0, 2.0),
        expressiveness=rng.uniform(0.8, 1.0),
    )


def _blend(speaker: Speaker, emotion: str, rng: np.random.Generator) -> Prosody:
    """The emotion's prosody, scaled by the speaker's expressiveness and jittered per take."""
    target, k = EMOTIONS[emotion], speaker.expressiveness

    def mix(field: str, jitter: float) -> float:
        base = getattr(NEUTRAL, field)
        return base + k * (getattr(target, field) - base) + rng.normal(0.0, jitter)

    return Prosody(
        pitch=mix("pitch", 0.05),
        pitch_range=max(0.01, mix("pitch_range", 0.03)),
        loudness_db=mix("loudness_db", 1.5),
        tempo=max(0.5, mix("tempo", 0.06)),
        tilt=mix("tilt", 0.15),
        pause=float(np.clip(mix("pause", 0.05), 0.0, 0.9)),
        valence=target.valence,
        arousal=target.arousal,
        dominance=target.dominance,
    )


def _resonator(freq: float, bandwidth: float) -> tuple[np.ndarray, np.ndarray]:
    r = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
    theta = 2 * np.pi * freq / SAMPLE_RATE
    a = np.array([1.0, -2 * r * np.cos(theta), r * r])
    return np.array([a.sum()]), a  # unity gain at 0 Hz


def _envelope(n: int, attack: int, release: int) -> np.ndarray:
    env = np.ones(n)
    attack, release = min(attack, n // 2), min(release, n // 2)
    env[:attack] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, attack))
    env[n - release :] = 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, release))
    return env


def _syllable(
    speaker: Speaker, prosody: Prosody, seconds: float, t0: float, rng: np.random.Generator
) -> np.ndarray:
    n = max(int(seconds * SAMPLE_RATE), 64)
    t = t0 + np.arange(n) / SAMPLE_RATE
    accent = rng.uniform(-1.0, 1.0)
    contour = 1.0 + prosody.pitch_range * (np.sin(2 * np.pi * 1.3 * t) * 0.7 + 0.5 * accent)
    f0 = np.clip(speaker.f0 * prosody.pitch * contour, 60.0, 500.0)
    f0 *= 1.0 + rng.normal(0.0, 0.003, n)  # jitter
    phase = np.cumsum(f0 / SAMPLE_RATE)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    pole = float(np.clip(0.96 - 0.10 * prosody.tilt, 0.70, 0.995))
    source = lfilter([1 - pole], [1, -pole], lfilter([1 - pole], [1, -pole], pulses))
    source = np.diff(source, prepend=0.0) * 40.0  # lip radiation
    vowel = VOWELS[rng.choice(list(VOWELS))]
    out = source
    for formant, bandwidth in zip(vowel, BANDWIDTHS):
        b, a = _resonator(formant * speaker.formant_scale * rng.uniform(0.95, 1.05), bandwidth)
        out = lfilter(b, a, out)
    return out * _envelope(n, int(0.02 * SAMPLE_RATE), int(0.04 * SAMPLE_RATE))


def _fricative(seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * SAMPLE_RATE)
    noise = lfilter([1.0, -0.95], [1.0], rng.normal(0.0, 1.0, n))  # high-passed noise
    return noise * _envelope(n, n // 4, n // 4) * 0.05


def synthesize(speaker: Speaker, emotion: str, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """One utterance: float32 waveform at 16 kHz (peak well below 1) and its words."""
    prosody = _blend(speaker, emotion, rng)
    words = [str(w) for w in rng.choice(WORDS, size=int(rng.integers(3, 8)))]
    pieces = [np.zeros(int(rng.uniform(0.1, 0.3) * SAMPLE_RATE))]
    elapsed = 0.0
    for word in words:
        for _ in range(int(rng.integers(1, 4))):
            if rng.random() < 0.4:
                pieces.append(_fricative(rng.uniform(0.04, 0.09) / prosody.tempo, rng))
            seconds = rng.uniform(0.12, 0.28) / prosody.tempo
            pieces.append(_syllable(speaker, prosody, seconds, elapsed, rng))
            elapsed += seconds
        gap = rng.uniform(0.15, 0.4) if rng.random() < prosody.pause else rng.uniform(0.02, 0.05)
        pieces.append(np.zeros(int(gap / prosody.tempo * SAMPLE_RATE)))
    pieces.append(np.zeros(int(rng.uniform(0.1, 0.3) * SAMPLE_RATE)))
    wav = np.concatenate(pieces)
    wav /= np.abs(wav).max() + 1e-9
    gain_db = prosody.loudness_db + speaker.gain_db + rng.normal(0.0, 1.0) - 20.0
    wav = wav * 10 ** (gain_db / 20) + rng.normal(0.0, 3e-4, wav.size)  # room noise floor
    return np.clip(wav, -1.0, 1.0).astype(np.float32), words


def annotate(emotion: str, rng: np.random.Generator) -> tuple[float, float, float]:
    """Valence, arousal, dominance on IEMOCAP's 1-5 scale, in half steps, noisy per take."""
    p = EMOTIONS[emotion]
    values = np.array([p.valence, p.arousal, p.dominance]) + rng.normal(0.0, 0.4, 3)
    return tuple(float(v) for v in np.clip(np.round(values * 2) / 2, 1.0, 5.0))
