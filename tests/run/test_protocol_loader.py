"""The seam through which a protocol reads other registered protocols (cross_corpus): the host
hands the factory ``load_protocol`` only when its meta asks, bound to the run's registry."""

from __future__ import annotations

from serbench.api import ProtocolMeta, Spec
from serbench.api.protocol import Fold, Protocol, Utterance
from serbench.run.plan import build_protocol, load_protocol


def _factory(data, *, load_protocol=None):
    member = load_protocol("synthetic", None, {"per_class": 1})
    ids = sorted(member.utterances)
    utterances = [member.utterances[i] for i in ids]
    return Protocol("wrapped", utterances, [Fold("only", tuple(ids[:2]), tuple(ids[2:3]), tuple(ids[3:]))],
                    list(member.classes))


def test_a_protocol_that_reads_protocols_gets_the_hosts_loader():
    spec = Spec("wrapped", _factory, "", meta=ProtocolMeta(reads_protocols=True))
    built = build_protocol(spec, None, {})
    direct = load_protocol("synthetic", None, {"per_class": 1})
    assert sorted(built.utterances) == sorted(direct.utterances)  # the member corpus, as its own protocol reads it
    assert all(isinstance(u, Utterance) for u in built.utterances.values())


def test_other_protocols_are_not_handed_a_loader():
    seen = {}

    def plain(data, **kwargs):
        seen.update(kwargs)
        return Protocol("plain", [], [], ["a"])

    build_protocol(Spec("plain", plain, "", meta=ProtocolMeta()), None, {})
    assert seen == {}
