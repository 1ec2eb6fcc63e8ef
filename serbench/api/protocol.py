"""What a protocol yields: utterances with side information, and folds of utterance ids."""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from serbench.api.errors import SerbenchError
from serbench.api.textfiles import line_break

SPEAKERS_UNKNOWN = "unknown"  # Protocol.speaker_source when each utterance stands in for its own speaker
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")  # nothing a fold name makes can leave the run directory

ProtocolLoader = Callable[[str, "str | Path | None", "Mapping[str, object]"], "Protocol"]
"""``load_protocol(name, data, options) -> Protocol``: how a protocol that reads other registered
protocols (``ProtocolMeta(reads_protocols=True)``, e.g. cross_corpus) builds a member corpus. The
host passes it to the factory as the keyword ``load_protocol``, bound to the registry the run
uses, so the plugin needs nothing of serbench outside this package; raises SerbenchError."""


GENDERS = {"f": "F", "female": "F", "woman": "F", "w": "F", "m": "M", "male": "M", "man": "M"}


def gender(value: object, where: str) -> str | None:
    """A corpus file's gender field as ``F``, ``M`` or None (empty); any other value is refused
    naming ``where``: kept as written, it would count as unknown and silently switch off a
    method's gender conditioning or augmentation."""
    text = str(value).strip() if value is not None else ""
    if not text or text.lower() == "unknown":
        return None
    if text.lower() not in GENDERS:
        raise SerbenchError(f"{where}: gender {text!r} is not one of F, M, female, male (or empty / unknown)")
    return GENDERS[text.lower()]


def case_clash(labels) -> tuple[str, str] | None:
    """The first two labels (in order) that differ only by case, or None. serbench refuses such
    labels rather than merging them (no rule says which spelling names the class, and a typo
    such as ``Ang`` beside ``ang`` is worth seeing): a corpus reader names both and their lines."""
    first: dict[str, str] = {}
    for label in labels:
        seen = first.setdefault(label.casefold(), label)
        if seen != label:
            return seen, label
    return None


@dataclass(frozen=True)
class Utterance:
    """One labelled utterance. ``attributes`` holds dimensional labels scaled to [0, 1].

    ``start`` / ``end`` (seconds, both or neither) make the utterance a stretch of ``path``
    rather than the whole file (EmoBox's pavoque lists segments of one long recording per
    speaking style): its audio is read, hashed and cached as that stretch alone
    (:func:`serbench.api.audio.load_utterance`, :func:`serbench.run.cache.utterance_hash`). ``origin``
    (``file:line`` where the protocol read it, or '') is how an error about its audio names the
    line to fix; it is no part of the corpus's digest. ``distribution`` is the raters' label
    distribution, ``{class: share}`` summing to 1, where the corpus has one
    (:mod:`serbench.api.soft_labels`; empty otherwise: only the majority ``label`` is known)."""

    id: str
    path: Path
    label: str
    speaker: str
    gender: str | None = None
    session: str | None = None
    attributes: dict[str, float] = field(default_factory=dict)
    transcript: str | None = None
    duration: float | None = None
    start: float | None = None
    end: float | None = None
    origin: str = ""
    distribution: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.start is None and self.end is None:
            return
        where = self.origin or f"utterance {self.id!r}"
        if self.start is None or self.end is None:
            raise SerbenchError(f"{where}: a segment needs both a start and an end time (got start {self.start!r}, "
                                f"end {self.end!r})")
        for what, value in (("start", self.start), ("end", self.end)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SerbenchError(f"{where}: segment {what} time {value!r} is not a number of seconds")
        if not 0 <= self.start < self.end:
            raise SerbenchError(f"{where}: segment {self.start!r}-{self.end!r} s: the start must be >= 0 and before "
                                "the end")

    @property
    def segment(self) -> tuple[float, float] | None:
        """(start, end) in seconds when the utterance is a stretch of its file, else None."""
        return None if self.start is None else (float(self.start), float(self.end))

    @property
    def where(self) -> str:
        """How an error about this utterance's audio names it: its file, and its line when known."""
        return f"{self.path} (utterance {self.id}{', listed at ' + self.origin if self.origin else ''})"


@dataclass(frozen=True)
class Fold:
    """One train / dev / test split, by utterance id. Test is scored once per fold."""

    name: str
    train: tuple[str, ...]
    dev: tuple[str, ...]
    test: tuple[str, ...]

    def check(self) -> None:
        """Raise when the splits overlap: a leak would silently inflate every score."""
        for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
            shared = set(getattr(self, a)) & set(getattr(self, b))
            if shared:
                example = sorted(shared)[0]
                raise SerbenchError(
                    f"fold {self.name}: {len(shared)} utterances in both {a} and {b} "
                    f"(e.g. {example})"
                )


class Protocol:
    """A corpus, its folds, its class list and the metric that selects models.

    ``main_metric`` is one of ``ua``, ``wa``, ``macro_f1``. ``expected`` holds published
    counts (keys as in :meth:`counts`) that a user's copy of the corpus must reproduce.
    Construction checks that every label is a known class, every fold id exists and no
    fold's splits overlap.

    ``speaker_source`` says where the speaker ids came from (``"corpus metadata"``, a rule such
    as ``"emobox rule: emodb, characters 1-2 of the id"``, or :data:`SPEAKERS_UNKNOWN` when
    each utterance is its own pseudo-speaker: speaker-level statistics are then utterance-level
    and labelled so). ``speaker_dependent`` declares a protocol whose folds put one speaker in
    both train and test by design; any other protocol with such a fold is refused.

    ``corpora`` (set by a protocol that combines corpora, such as ``cross_corpus``) names each
    one as ``role:name=protocol[part]#digest``; the result's comparability key then carries them.
    ``notes`` is what the protocol wants recorded in ``result.json`` under
    ``annotations.protocol`` (counts of dropped utterances, say).
    """

    corpora: tuple[str, ...] = ()  # class defaults (read-only) for a subclass that skips this __init__
    notes: Mapping = MappingProxyType({})

    def __init__(
        self,
        name: str,
        utterances: list[Utterance],
        folds: list[Fold],
        classes: list[str],
        main_metric: str = "ua",
        expected: dict[str, int] | None = None,
        required: dict[str, tuple[str, ...]] | None = None,
        speaker_source: str = "corpus metadata",
        speaker_dependent: bool = False,
    ):
        self.name = name
        self.utterances = {u.id: u for u in utterances}
        self.folds = folds
        self.classes = list(classes)
        self.main_metric = main_metric
        self.expected = expected or {}
        self.required = required or {}
        self.speaker_source = speaker_source
        self.speaker_dependent = speaker_dependent
        self.corpora, self.notes = (), {}  # set after construction by a protocol that has any
        for u in utterances:  # a protocol's own reader names the file and line; this catches any other
            for what in ("id", "label", "speaker", "session"):
                problem = line_break(str(getattr(u, what) or ""))
                if problem:
                    raise SerbenchError(f"protocol {name}: utterance {u.id!r}: {what} {getattr(u, what)!r} holds "
                                        f"{problem}; a name must fit on one line")
        clash = case_clash(self.classes)
        if clash:
            raise SerbenchError(f"protocol {name}: classes {clash[0]!r} and {clash[1]!r} differ only by case; "
                                "one emotion written two ways would be scored as two classes")
        unknown = Counter(u.label for u in utterances if u.label not in self.classes)
        strays = next((u for u in utterances if set(u.distribution) - set(self.classes)), None)
        if strays is not None:  # a protocol reader names the file; this catches any other
            raise SerbenchError(f"protocol {name}: utterance {strays.id!r}: rater distribution names "
                                f"{sorted(set(strays.distribution) - set(self.classes))[0]!r}, not one of {self.classes}")
        if unknown:
            raise SerbenchError(f"protocol {name}: labels outside {self.classes}: {dict(unknown)}")
        for fold in folds:
            fold.check()
            missing = [i for i in fold.train + fold.dev + fold.test if i not in self.utterances]
            if missing:
                raise SerbenchError(f"fold {fold.name}: unknown utterance ids, e.g. {missing[0]}")

    @property
    def speakers_known(self) -> bool:
        return self.speaker_source != SPEAKERS_UNKNOWN

    def speaker_record(self) -> dict:
        """What ``result.json`` keeps under ``speakers``: where the ids came from, whether they
        are real speakers, and whether the folds share speakers between train and test by design."""
        return {"source": self.speaker_source, "known": self.speakers_known,
                "speaker_dependent": self.speaker_dependent}

    def shared_speakers(self, first: str, second: str) -> list[tuple[str, list[str]]]:
        """(fold name, sorted speakers) for every fold whose ``first`` and ``second`` splits
        share a speaker; empty when speakers are unknown (one pseudo-speaker per utterance
        cannot be in two splits, since no utterance is)."""
        if not self.speakers_known:
            return []
        found = []
        for fold in self.folds:
            speakers = [{self.utterances[i].speaker for i in getattr(fold, split)} for split in (first, second)]
            if speakers[0] & speakers[1]:
                found.append((fold.name, sorted(speakers[0] & speakers[1])))
        return found

    def speaker_leak(self) -> str:
        """Why this protocol's scores would not be speaker-independent ('' when they are, or when
        it declares ``speaker_dependent``): a fold whose train and test share a speaker rewards
        recognising known voices, and a paper would report it as generalisation."""
        leaks = [] if self.speaker_dependent else self.shared_speakers("train", "test")
        if not leaks:
            return ""
        fold, speakers = leaks[0]
        return (f"protocol {self.name}: fold {fold}: speaker {speakers[0]!r} is in both train and test ({len(speakers)} "
                f"of its {self._test_speakers(fold)} test speakers leak; {len(leaks)} of {len(self.folds)} folds leak): scores would "
                "reward knowing the voice; regroup the folds by speaker, or declare the protocol speaker-dependent "
                "(csv: -o protocol.speaker_dependent=true; a plugin: Protocol(..., speaker_dependent=True))")

    def dev_test_speakers(self) -> str:
        """A note ('' when none) on folds whose dev and test share a speaker: model selection then
        sees the test speakers' voices, a milder optimism than training on them."""
        shared = [] if self.speaker_dependent else self.shared_speakers("dev", "test")
        if not shared:
            return ""
        fold, speakers = shared[0]
        return (f"protocol {self.name}: fold {fold}: speaker {speakers[0]!r} is in both dev and test ({len(speakers)} "
                f"of its {self._test_speakers(fold)} test speakers; {len(shared)} of {len(self.folds)} folds): model "
                "selection sees the test speakers")

    def _test_speakers(self, fold_name: str) -> int:
        fold = next(f for f in self.folds if f.name == fold_name)
        return len({self.utterances[i].speaker for i in fold.test})

    def check_usable(self) -> None:
        """Refuse what would yield a number that means nothing (a run calls this; ``serbench data
        check`` reports counts first): fewer than two classes, no fold, a required session or
        speaker with no utterance, a fold with an empty split or a class it never trains on, a
        speaker in both train and test of a fold unless the protocol declares ``speaker_dependent``
        (a speaker in both dev and test is only warned about)."""
        if len(set(self.classes)) < 2 or len(set(self.classes)) < len(self.classes):
            raise SerbenchError(f"protocol {self.name}: classes {self.classes}: a classifier needs at least two "
                                "distinct classes")
        for attribute, wanted in self.required.items():
            present = {getattr(u, attribute) for u in self.utterances.values()}
            absent = [w for w in wanted if w not in present]
            if absent:
                raise SerbenchError(f"protocol {self.name}: {attribute} {absent[0]} has no utterance (each of "
                                    f"{', '.join(wanted)} must have some); is the copy of the corpus complete?")
        if not self.folds:
            raise SerbenchError(f"protocol {self.name}: no fold")
        for fold in self.folds:
            if not SAFE_NAME.fullmatch(str(fold.name)):  # fold names become file names in the run directory
                raise SerbenchError(f"protocol {self.name}: fold name {str(fold.name)!r} cannot name a file (letters, "
                                    "digits, '.', '_' and '-' only, not starting with '.'); rename that fold")
            for split in ("train", "dev", "test"):
                if not getattr(fold, split):
                    raise SerbenchError(f"protocol {self.name}: fold {fold.name} has no {split} utterance")
            absent = [c for c, n in zip(self.classes, self.label_counts(fold.train)) if n == 0]
            if absent:
                shown = absent[0] if len(absent[0]) <= 40 else absent[0][:37] + "..."
                raise SerbenchError(f"protocol {self.name}: fold {fold.name}: class {shown!r} has no training "
                                    "utterance (no model can learn it); drop the class (protocol.classes) or "
                                    "regroup the folds")
        leak = self.speaker_leak()
        if leak:
            raise SerbenchError(leak)
        note = self.dev_test_speakers()
        if note:
            warnings.warn(note, stacklevel=2)

    def label_counts(self, ids: tuple[str, ...]) -> list[int]:
        counts = Counter(self.utterances[i].label for i in ids)
        return [counts.get(c, 0) for c in self.classes]

    def digest(self) -> str:
        """What a run's results depend on in the corpus: every utterance's id, label, speaker,
        gender, session, attributes, transcript and segment (when it is one), and every fold's membership (not the audio
        bytes: the feature cache keys on those, and a resumed run checks them)."""
        digest = hashlib.sha256()
        for uid in sorted(self.utterances):
            u = self.utterances[uid]
            fields = [uid, u.label, u.speaker, u.gender, u.session, sorted(u.attributes.items()), u.transcript]
            if u.segment is not None:  # only then: a corpus of whole files keeps the digest (and run ids) it had
                fields.append(list(u.segment))
            if u.distribution:  # likewise: a corpus without rater distributions keeps its digest
                fields.append(sorted(u.distribution.items()))
            digest.update(json.dumps(fields).encode())
        for fold in self.folds:
            digest.update(json.dumps([fold.name, sorted(fold.train), sorted(fold.dev), sorted(fold.test)]).encode())
        return digest.hexdigest()[:16]

    def published_differences(self) -> list[str]:
        """``key: N here, M published`` for every published count this copy does not match
        (empty when it matches, or when the protocol publishes none)."""
        found = self.counts()
        return [f"{key}: {found.get(key, 0)} here, {count} published"
                for key, count in self.expected.items() if found.get(key, 0) != count]

    def counts(self) -> dict[str, int]:
        """``total``, ``label:<class>``, ``session:<s>`` and ``speaker:<spk>`` counts."""
        found: Counter[str] = Counter()
        for u in self.utterances.values():
            found["total"] += 1
            found[f"label:{u.label}"] += 1
            if u.session is not None:
                found[f"session:{u.session}"] += 1
            found[f"speaker:{u.speaker}"] += 1
        return dict(found)
