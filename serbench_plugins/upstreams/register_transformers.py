"""Registers the transformers encoders (WavLM, HuBERT, wav2vec 2.0, ``hf:<id>``, and ``tiny``, a small random one): specs only,
so that listing plugins imports no torch; the implementation,
:mod:`serbench_plugins.upstreams.hf`, is imported when one is built."""

from __future__ import annotations

from functools import partial

from serbench.api import Param, Spec, hookimpl

CHECKPOINTS = {
    "wavlm_base": ("microsoft/wavlm-base", "WavLM Base (94M), LibriSpeech 960 h"),
    "wavlm_base_plus": ("microsoft/wavlm-base-plus", "WavLM Base+ (94M), 94k h"),
    "wavlm_large": ("microsoft/wavlm-large", "WavLM Large (316M), 94k h"),
    "hubert_base": ("facebook/hubert-base-ls960", "HuBERT Base (95M), LibriSpeech 960 h"),
    "hubert_large": ("facebook/hubert-large-ll60k", "HuBERT Large (317M), Libri-Light 60k h"),
    "wav2vec2_base": ("facebook/wav2vec2-base", "wav2vec 2.0 Base (95M), LibriSpeech 960 h"),
    "wav2vec2_large": ("facebook/wav2vec2-large-lv60", "wav2vec 2.0 Large (317M), Libri-Light 60k h"),
}
CITATIONS = {
    "wavlm": "Chen et al., WavLM, IEEE JSTSP 16(6), 2022, arXiv:2110.13900",
    "hubert": "Hsu et al., HuBERT, IEEE/ACM TASLP 29, 2021, arXiv:2106.07447",
    "wav2vec2": "Baevski et al., wav2vec 2.0, NeurIPS 2020, arXiv:2006.11477",
}


def _load(repo: str):
    from serbench_plugins.upstreams.hf import load

    return load(repo)


# 2: on a CPU every utterance is extracted alone (serbench.run.features.batch_limit), so a
# batch-safe checkpoint's features no longer carry the padded batch's last-bit differences
VERSION = "2"


def _spec(name: str, repo: str, summary: str) -> Spec:
    family = name.split("_")[0]
    return Spec(name=name, factory=partial(_load, repo), summary=f"{summary} [{repo}]", version=VERSION,
                citation=CITATIONS[family])


@hookimpl
def register_upstreams() -> list[Spec]:
    specs = [_spec(name, repo, summary) for name, (repo, summary) in CHECKPOINTS.items()]
    specs.append(
        Spec(name="hf:", factory="serbench_plugins.upstreams.hf:load",
             summary="any wav2vec2-style transformers checkpoint: hf:<repo id or folder>", version=VERSION)
    )
    specs.append(  # a random transformers model: same code path, no download
        Spec(
            name="tiny",
            factory="serbench_plugins.upstreams.tiny:make_tiny",
            summary="small random WavLM (transformers), for tests and smoke runs",
            params=(
                Param("depth", int, 2, "transformer layers", bounds=">= 1"),
                Param("dim", int, 32, "hidden width", bounds=">= 1"),
                Param("heads", int, 2, "attention heads", bounds=">= 1"),
                Param("seed", int, 0, "seed of the random initialisation", bounds=">= 0"),
            ),
            version="3",  # 3: one utterance per extraction batch on a CPU (no padding)
        )
    )
    return specs
