"""``cross_corpus``: train on one or more corpora, test on another (``--data EXPERIMENT.toml``).

The experiment file names the shared classes, the training corpora and the test corpus; each
corpus is read by any serbench protocol with that protocol's own options, and its labels are
mapped onto the shared classes by a declared table::

    classes = ["angry", "happy", "neutral", "sad"]

    [[train]]
    name = "a"                   # tags ids ("a:x.wav", speaker "a:spk1"); default: the data name
    protocol = "csv"
    data = "a/corpus.csv"        # relative to this file; left out: the protocol's saved location
    options = { attribute_max = 7.0 }
    labels = { ang = "angry", hap = "happy", neu = "neutral", sad = "sad" }

    [test]
    name = "b"
    protocol = "emobox"
    data = "EmoBox/data/savee"
    labels = "savee_map.csv"     # or a CSV file of label,class rows
    balanced = true              # EmoBox's track-2 balanced test set (see emobox_track2)

A corpus without ``labels`` must already use the class names. A label that its table does not
map (or, without a table, that is not a class) is refused in one line naming it and its count,
unless ``-o protocol.drop_unmapped=true``: then such utterances are dropped and the counts,
per corpus and label, are written to the result's ``annotations.protocol``. ``part`` takes
all of a corpus (default) or the union of its folds' ``train``, ``dev`` or ``test`` split.

One fold: train = the training corpora less their dev share; dev = per training corpus, whole
speakers (a ``dev_fraction`` of it) when its speakers are known, else a stratified share, so
model selection never sees the test corpus; test = the test corpus. Speakers are kept apart
by corpus (ids are prefixed with the corpus name): two corpora recording one person would not
be noticed, which serbench cannot know. The result's comparability key names every corpus
(role, name, protocol, digest of its own utterances): a run tested on another corpus, or
trained on another, is never ranked beside this one.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path

from serbench.api import Param, ProtocolMeta, Spec, hookimpl
from serbench.api.errors import SerbenchError
from serbench.api.folds import speaker_disjoint_holdout, stratified_holdout
from serbench.api.protocol import SPEAKERS_UNKNOWN, Fold, Protocol, ProtocolLoader, Utterance
from serbench_plugins.protocols.cross_corpus_spec import CorpusEntry, read_spec
from serbench_plugins.protocols.emobox_track2 import balanced_set

log = logging.getLogger("serbench")


def _read_corpus(entry: CorpusEntry, load_protocol: ProtocolLoader) -> Protocol:
    """The corpus as its own protocol reads it (through the host's loader: the registry is the
    host's); a problem is named with the experiment entry."""
    try:
        return load_protocol(entry.protocol, entry.data, dict(entry.options))
    except SerbenchError as exc:
        raise SerbenchError(f"{entry.where}: {exc}") from None


def _members(entry: CorpusEntry, protocol: Protocol) -> tuple[list[Utterance], int]:
    """The utterances the experiment takes from this corpus, and how many balanced-set records
    could not be placed (EmoBox track 2 only)."""
    if entry.balanced:
        return balanced_set(protocol, entry.data, entry.where)
    if entry.part == "all":
        return list(protocol.utterances.values()), 0
    ids = dict.fromkeys(i for fold in protocol.folds for i in getattr(fold, entry.part))
    return [protocol.utterances[i] for i in ids], 0


def _mapped(entry: CorpusEntry, members: list[Utterance], classes: tuple[str, ...],
            drop_unmapped: bool) -> tuple[list[Utterance], Counter]:
    """The utterances relabelled onto the shared classes and tagged with the corpus name, and
    the count of each raw label that was dropped (refused unless ``drop_unmapped``)."""
    table = entry.labels if entry.labels is not None else {c: c for c in classes}
    wrong = sorted({c for c in table.values() if c not in classes})
    if wrong:
        raise SerbenchError(f"{entry.where}: labels map to {', '.join(map(repr, wrong))}, not in classes "
                            f"{list(classes)}")
    unmapped = Counter(u.label for u in members if u.label not in table)
    if unmapped and not drop_unmapped:
        shown = ", ".join(f"{label!r} ({n})" for label, n in sorted(unmapped.items()))
        raise SerbenchError(f"{entry.where}: labels not in its label map: {shown}; map them in its labels table, "
                            "or drop them knowingly with -o protocol.drop_unmapped=true")
    tag = entry.name
    kept = [replace(u, id=f"{tag}:{u.id}", label=table[u.label], speaker=f"{tag}:{u.speaker}",
                    session=f"{tag}:{u.session}" if u.session is not None else None)
            for u in members if u.label in table]
    if not kept:
        raise SerbenchError(f"{entry.where}: no utterance left after mapping its labels onto {list(classes)}")
    return kept, unmapped


def _dev(protocol: Protocol, kept: list[Utterance], fraction: float, seed: int) -> set[str]:
    speakers_apart = protocol.speakers_known and not protocol.speaker_dependent
    holdout = speaker_disjoint_holdout if speakers_apart else stratified_holdout
    return holdout(kept, fraction, seed)


def make_protocol(data: Path | None, drop_unmapped: bool, dev_fraction: float, seed: int,
                  main_metric: str, *, load_protocol: ProtocolLoader) -> Protocol:
    if data is None:
        raise SerbenchError("cross_corpus needs --data EXPERIMENT.toml (the training and test corpora and "
                            "their label maps; see serbench list protocols cross_corpus)")
    spec = read_spec(Path(data))
    utterances: list[Utterance] = []
    train: list[str] = []
    dev: list[str] = []
    corpora: list[str] = []
    dropped: dict[str, dict[str, int]] = {}
    sources: list[str] = []
    test_known = True
    for k, entry in enumerate(spec.train + (spec.test,)):
        protocol = _read_corpus(entry, load_protocol)
        members, unplaced = _members(entry, protocol)
        kept, unmapped = _mapped(entry, members, spec.classes, drop_unmapped)
        if unmapped:
            dropped[entry.name] = dict(sorted(unmapped.items()))
            log.info(f"{entry.where}: dropped {sum(unmapped.values())} utterances with unmapped labels "
                     f"({', '.join(f'{a}: {n}' for a, n in sorted(unmapped.items()))})")
        if unplaced:
            dropped.setdefault(entry.name, {})["(balanced record not found)"] = unplaced
            log.info(f"{entry.where}: {unplaced} balanced-set records match no single EmoBox record: left out")
        utterances.extend(kept)
        part = "balanced" if entry.balanced else entry.part
        subset = Protocol(entry.name, kept, [], list(spec.classes))  # its digest: this corpus's share alone
        corpora.append(f"{entry.role}:{entry.name}={protocol.name}[{part}]#{subset.digest()}")
        sources.append(f"{entry.name}: {protocol.speaker_source}")
        if entry.role == "test":
            test = tuple(u.id for u in kept)
            test_known = protocol.speakers_known
            continue
        held = _dev(protocol, kept, dev_fraction, seed + k)
        train.extend(u.id for u in kept if u.id not in held)
        dev.extend(u.id for u in kept if u.id in held)
    source = "; ".join(sources) if test_known else SPEAKERS_UNKNOWN
    fold = Fold(spec.test.name, tuple(train), tuple(dev), test)
    names = "+".join(e.name for e in spec.train)
    result = Protocol(f"cross_corpus:{names}->{spec.test.name}", utterances, [fold], list(spec.classes),
                      main_metric=main_metric, speaker_source=source)
    result.corpora = tuple(corpora)
    if dropped:
        result.notes = {"dropped_unmapped": dropped}
    return result


make_protocol.__doc__ = __doc__  # what serbench list protocols NAME shows


@hookimpl
def register_protocols() -> list[Spec]:
    return [
        Spec(
            name="cross_corpus",
            factory=make_protocol,
            summary="train on one or more corpora, test on another (data = an experiment TOML with label maps)",
            params=(
                Param("drop_unmapped", bool, False, "drop utterances whose label the corpus's label map does not "
                      "map (counted in the result) instead of refusing them"),
                Param("dev_fraction", float, 0.2, "dev share of each training corpus", bounds="(0, 1)"),
                Param("seed", int, 0, "seed of the dev split", bounds=">= 0"),
                Param("main_metric", str, "ua", "metric for model selection", ("ua", "wa", "macro_f1")),
            ),
            version="1",
            citation="EmoBox track 2: Ma et al., EmoBox, Interspeech 2024, arXiv:2406.07162",
            meta=ProtocolMeta(data_key="cross_corpus", reads_protocols=True),
        )
    ]
