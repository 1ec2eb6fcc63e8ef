"""Registers the openSMILE functionals upstreams: specs only, so that listing plugins imports
neither torch nor opensmile; the implementation, :mod:`serbench_plugins.upstreams.opensmile_features`,
is imported (and opensmile with it, or an install hint) when the plugin is built."""

from __future__ import annotations

from serbench.api import Spec, UpstreamMeta, hookimpl

_LICENCE = "openSMILE: research/non-commercial licence; extra serbench[opensmile]"


@hookimpl
def register_upstreams() -> list[Spec]:
    return [
        Spec(
            name="egemaps",
            factory="serbench_plugins.upstreams.opensmile_features:make_egemaps",
            summary=f"eGeMAPSv02 functionals, 88 per utterance ({_LICENCE})",
            version="1",
            citation="Eyben et al., The Geneva Minimalistic Acoustic Parameter Set (GeMAPS), IEEE TAC 2016, "
                     "doi:10.1109/TAFFC.2015.2457417; openSMILE: Eyben et al., ACM MM 2010",
            meta=UpstreamMeta(trainable=False),
        ),
        Spec(
            name="compare_2016",
            factory="serbench_plugins.upstreams.opensmile_features:make_compare_2016",
            summary=f"ComParE 2016 functionals, 6,373 per utterance ({_LICENCE}); -o cache.dtype=float32",
            version="1",
            citation="Schuller et al., The INTERSPEECH 2016 ComParE Challenge, Interspeech 2016, "
                     "doi:10.21437/Interspeech.2016-129; openSMILE: Eyben et al., ACM MM 2010",
            meta=UpstreamMeta(trainable=False),
        ),
    ]
