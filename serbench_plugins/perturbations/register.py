"""Registers the built-in perturbations: specs only; the implementations in
:mod:`serbench_plugins.perturbations` are imported when one is built."""

from __future__ import annotations

from serbench.api import Param, Spec, hookimpl

_FOLDER = "a folder of audio files to draw from instead (its files' content is part of the cache key)"


@hookimpl
def register_perturbations() -> list[Spec]:
    return [
        Spec(
            name="noise",
            factory="serbench_plugins.perturbations.noise:AdditiveNoise",
            summary="additive noise at an SNR (dB): generated white or pink noise, or a folder of noise recordings",
            params=(
                Param("snr", float, 10.0, "signal-to-noise ratio in dB (mean power over the whole utterance)"),
                Param("color", str, "white", "generated noise colour (ignored with a folder)", ("white", "pink")),
                Param("folder", str, "", _FOLDER),
            ),
        ),
        Spec(
            name="telephone",
            factory="serbench_plugins.perturbations.telephone:Telephone",
            summary="telephone channel: resampled to 8 kHz and back, through an 8-bit mu-law or A-law codec",
            params=(Param("codec", str, "mulaw", "8-bit companding codec at 8 kHz", ("mulaw", "alaw", "none")),),
            citation="ITU-T Recommendation G.711 (1988): pulse code modulation of voice frequencies",
        ),
        Spec(
            name="reverb",
            factory="serbench_plugins.perturbations.reverb:Reverb",
            summary="reverberation: a synthetic (Polack exponential-decay) room impulse response, or a folder of RIRs",
            params=(
                Param("rt60", float, 0.5, "reverberation time in seconds (synthetic response)", bounds="> 0"),
                Param("drr", float, 0.0, "direct-to-reverberant energy ratio in dB (synthetic response)"),
                Param("folder", str, "", _FOLDER),
            ),
            citation="Polack, J.-D. (1993). Playing billiards in the concert hall. Applied Acoustics 38:235-244",
        ),
        Spec(
            name="clip",
            factory="serbench_plugins.perturbations.level:Clip",
            summary="hard clipping at a share of each utterance's peak amplitude",
            params=(Param("level", float, 0.5, "clipping threshold as a share of the utterance's peak", bounds="(0, 1]"),),
        ),
        Spec(
            name="gain",
            factory="serbench_plugins.perturbations.level:Gain",
            summary="a gain in dB (no limiting)",
            params=(Param("db", float, -6.0, "gain in dB"),),
        ),
    ]
