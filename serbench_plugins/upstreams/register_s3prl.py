"""Registers s3prl: specs only, so that listing plugins imports no torch; the
implementation, :mod:`serbench_plugins.upstreams.s3prl_hub`, is imported when the plugin is built."""

from __future__ import annotations

from serbench.api import Param, Spec, hookimpl


@hookimpl
def register_upstreams() -> list[Spec]:
    return [
        Spec(
            name="s3prl:",
            factory="serbench_plugins.upstreams.s3prl_hub:make",
            summary="any s3prl hub upstream: s3prl:<name> (optional extra serbench[s3prl])",
            params=(
                Param("path_or_url", str, "", "checkpoint path or URL for names that take one (hf_*_custom)"),
                Param("normalize", bool, False, "s3prl's per-layer normalisation of hidden states"),
            ),
            version="2",  # 2: one utterance per extraction batch on a CPU (serbench.run.features.batch_limit)
            citation="Yang et al., SUPERB, Interspeech 2021 (s3prl toolkit)",
        )
    ]
