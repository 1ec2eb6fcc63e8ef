"""Voice activity per upstream frame, with WebRTC's VAD (webrtcvad).

The VAD decides on 10 ms frames of 16-bit PCM at 16 kHz; an upstream frame (20 ms for the
SSL encoders, 10 ms for fbank) counts as speech when at least half of the 10 ms frames it
covers do. The mask is a derived annotation a batch carries as ``vad`` [B, T], aligned to
the features' frames.
"""

from __future__ import annotations

import numpy as np
import webrtcvad

STEP = 160  # 10 ms at 16 kHz


def speech_frames(wav: np.ndarray, frame_rate: float, num_frames: int, aggressiveness: int = 3) -> np.ndarray:
    """Boolean ``[num_frames]``: True where the upstream frame is speech."""
    vad = webrtcvad.Vad(int(aggressiveness))
    pcm = (np.clip(wav, -1.0, 1.0) * 32767).astype("<i2")
    steps = pcm.size // STEP
    flags = np.array([vad.is_speech(pcm[i * STEP : (i + 1) * STEP].tobytes(), 16_000) for i in range(steps)], dtype=bool)
    per_frame = 100.0 / frame_rate  # 10 ms steps per upstream frame
    mask = np.zeros(num_frames, dtype=bool)
    for j in range(num_frames):
        lo = int(round(j * per_frame))
        hi = max(lo + 1, int(round((j + 1) * per_frame)))
        covered = flags[lo:hi]
        mask[j] = covered.size > 0 and covered.mean() >= 0.5
    return mask
