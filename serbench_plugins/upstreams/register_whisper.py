"""Registers Whisper's encoder (``whisper_*``, ``whisper:<id or folder>``, ``tiny_whisper``): specs
only, so that listing plugins imports no torch; :mod:`serbench_plugins.upstreams.whisper` is
imported when one is built."""

from __future__ import annotations

from functools import partial

from serbench.api import Param, Spec, hookimpl

CHECKPOINTS = {
    "whisper_tiny": ("openai/whisper-tiny", "Whisper tiny encoder (4 layers, 384)"),
    "whisper_base": ("openai/whisper-base", "Whisper base encoder (6 layers, 512)"),
    "whisper_small": ("openai/whisper-small", "Whisper small encoder (12 layers, 768)"),
    "whisper_medium": ("openai/whisper-medium", "Whisper medium encoder (24 layers, 1024)"),
    "whisper_large_v3": ("openai/whisper-large-v3", "Whisper large-v3 encoder (32 layers, 1280, 128 mels)"),
}
CITATION = "Radford et al., Robust Speech Recognition via Large-Scale Weak Supervision, ICML 2023, arXiv:2212.04356"


def _load(repo: str):
    """Whisper's encoder from the local Hugging Face cache (never downloaded at run time; the
    error says how to get the weights). Its 30-s input padding is kept, and its output is
    cropped to the frames of the real audio (ceil(samples / 320) at 50 Hz), so pooling never
    sees the padding; longer audio is encoded in 30-s windows (serbench_plugins.upstreams.whisper)."""
    from serbench_plugins.upstreams.whisper import load

    return load(repo)


@hookimpl
def register_upstreams() -> list[Spec]:
    specs = [Spec(name=name, factory=partial(_load, repo), summary=f"{summary} [{repo}]", version="1",
                  citation=CITATION) for name, (repo, summary) in CHECKPOINTS.items()]
    specs.append(Spec(name="whisper:", factory="serbench_plugins.upstreams.whisper:load",
                      summary="any Whisper checkpoint's encoder: whisper:<repo id or folder>", version="1",
                      citation=CITATION))
    specs.append(
        Spec(
            name="tiny_whisper",
            factory="serbench_plugins.upstreams.whisper:make_tiny",
            summary="small random Whisper encoder (transformers), for tests and smoke runs",
            params=(
                Param("depth", int, 2, "encoder layers", bounds=">= 1"),
                Param("dim", int, 32, "hidden width", bounds=">= 1"),
                Param("heads", int, 2, "attention heads", bounds=">= 1"),
                Param("mel_bins", int, 80, "log-mel bins (80; large-v3 uses 128)", bounds=">= 1"),
                Param("seed", int, 0, "seed of the random initialisation", bounds=">= 0"),
            ),
            version="1",
        )
    )
    return specs
