"""A third-party serbench plugin: one perturbation, registered through the ``serbench`` group.

Packet loss as a voice-over-IP call suffers it: the 16 kHz waveform is cut into packets of
``packet_ms`` (20 ms, a common RTP payload), and each packet is lost or kept by a two-state
(Gilbert) Markov chain, so that losses come in bursts of mean length ``burst`` packets while
``rate`` of all packets are lost in the long run (``burst=1`` gives independent losses). A lost
packet is replaced by silence: zero insertion, the simplest concealment (a real codec would
interpolate); the choice is this example's own.

After ``pip install ./examples/serbench-packetloss`` it is listed by ``serbench list
perturbations`` and used with ``serbench run ... --perturb packetloss:rate=0.2`` (scored beside
clean) or ``-o train.augment=packetloss:rate=0.1`` (training augmentation).
"""

from __future__ import annotations

import numpy as np

from serbench.api import Param, Spec, hookimpl

SAMPLE_RATE = 16_000


def lost_packets(count: int, rate: float, burst: float, rng: np.random.Generator) -> np.ndarray:
    """Which of ``count`` packets are lost: a Gilbert chain with stationary loss share ``rate``
    and mean burst length ``burst`` (P(lost -> kept) = 1/burst; P(kept -> lost) set so that the
    stationary share is ``rate``), started from its stationary distribution."""
    if rate <= 0.0 or count == 0:
        return np.zeros(count, dtype=bool)
    leave_loss = 1.0 / burst
    enter_loss = min(1.0, rate * leave_loss / (1.0 - rate))
    draws = rng.random(count)
    lost = np.empty(count, dtype=bool)
    state = draws[0] < rate
    lost[0] = state
    for i in range(1, count):
        state = draws[i] >= leave_loss if state else draws[i] < enter_loss
        lost[i] = state
    return lost


class PacketLoss:
    """Zero out lost packets; the waveform keeps its length."""

    def __init__(self, rate: float = 0.1, burst: float = 1.0, packet_ms: float = 20.0):
        self.rate, self.burst = rate, burst
        self.packet = max(1, int(round(packet_ms * SAMPLE_RATE / 1000)))

    def __call__(self, wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        count = -(-wav.size // self.packet)
        lost = lost_packets(count, self.rate, self.burst, rng)
        out = np.asarray(wav, dtype=np.float32).copy()
        for index in np.flatnonzero(lost):
            out[index * self.packet: (index + 1) * self.packet] = 0.0
        return out


@hookimpl
def register_perturbations():
    return [Spec(
        name="packetloss",
        factory=PacketLoss,
        summary="VoIP packet loss: bursty (Gilbert) loss of 20 ms packets, lost ones replaced by silence (example plugin)",
        params=(
            Param("rate", float, 0.1, "long-run share of packets lost", bounds="[0, 1)"),
            Param("burst", float, 1.0, "mean length of a loss burst in packets (1: independent losses)", bounds=">= 1"),
            Param("packet_ms", float, 20.0, "packet length in milliseconds", bounds="> 0"),
        ),
    )]
