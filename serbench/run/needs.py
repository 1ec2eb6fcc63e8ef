"""What plugins need from a batch beyond features and labels, checked before any work.

A spec declares ``meta.needs``, a tuple (or a function of its resolved parameters that
returns one) of: ``attributes`` (valence and arousal labels),
``gender``, ``transcript`` (side information the protocol must provide for every utterance)
and ``vad`` (a voice-activity mask the host derives, aligned to the features' frames).
"""

from __future__ import annotations

from collections.abc import Mapping

from serbench.api.errors import SerbenchError
from serbench.api.protocol import Protocol
from serbench.api.specs import Spec

SIDE_INFORMATION = {
    "attributes": ("dimensional labels (valence, arousal)", lambda u: "valence" in u.attributes and "arousal" in u.attributes),
    "gender": ("speaker gender", lambda u: u.gender is not None),
    "transcript": ("transcripts", lambda u: u.transcript is not None),
}
KNOWN = (*SIDE_INFORMATION, "vad")


def declared(specs: Mapping[str, Spec], config: Mapping[str, dict]) -> dict[str, str]:
    """``{need: kind of the plugin that declared it}``; a plugin may waive ``transcript``
    with its parameter ``allow_missing_transcripts``."""
    found: dict[str, str] = {}
    for kind, spec in specs.items():
        params = config.get(kind, {}).get("params", {})
        for need in _needs_of(spec, params):
            if need not in KNOWN:
                raise SerbenchError(f"{kind} {spec.name} declares an unknown need {need!r} (known: {', '.join(KNOWN)})")
            if need == "transcript" and params.get("allow_missing_transcripts"):
                continue
            found.setdefault(need, kind)
    return found


def _needs_of(spec: Spec, params: Mapping) -> tuple[str, ...]:
    needs = getattr(spec.meta, "needs", ())  # declared by downstreams, poolings and losses
    return tuple(needs(params) if callable(needs) else needs)


def vad_aggressiveness(specs: Mapping[str, Spec], config: Mapping[str, dict]) -> int:
    for kind, spec in specs.items():
        if "vad" in _needs_of(spec, config.get(kind, {}).get("params", {})):
            return int(config[kind]["params"].get("vad_aggressiveness", 3))
    return 3


def check(protocol: Protocol, needs: Mapping[str, str], specs: Mapping[str, Spec]) -> None:
    """Fail early when the protocol lacks side information a plugin needs."""
    for need, kind in needs.items():
        if need not in SIDE_INFORMATION:
            continue
        what, present = SIDE_INFORMATION[need]
        missing = [u.id for u in protocol.utterances.values() if not present(u)]
        if missing:
            raise SerbenchError(
                f"{kind} {specs[kind].name} needs {what}, which protocol {protocol.name} lacks for "
                f"{len(missing)} of {len(protocol.utterances)} utterances (e.g. {missing[0]})"
            )
