"""``serbench data check``: is this copy of a corpus the one the protocol was defined on?"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field

from serbench.api.audio import utterance_frames
from serbench.api.errors import SerbenchError
from serbench.api.protocol import Protocol


@dataclass
class Report:
    rows: list[tuple[str, int | None, int]]  # key, expected (None: not published), found
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth knowing, not wrong: shared dev/test speakers, declared designs
    sample_rates: Counter = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(e is None or e == f for _, e, f in self.rows)


def check(protocol: Protocol) -> Report:
    """Every listed file present and readable, with its rate and duration; counts against
    the protocol's published ones; speakers shared across a fold's splits (a leak is a problem
    even when another problem stops the run first)."""
    found = protocol.counts()
    keys = list(protocol.expected) + sorted(k for k in found if k not in protocol.expected)
    report = Report([(k, protocol.expected.get(k), found.get(k, 0)) for k in keys])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its dev/test warning is one of the notes below
        try:
            protocol.check_usable()
        except SerbenchError as exc:  # reported beside the counts, which say why
            report.problems.append(str(exc))
    leak = protocol.speaker_leak()
    if leak and leak not in report.problems:
        report.problems.append(leak)
    report.notes.extend(speaker_notes(protocol))
    for u in protocol.utterances.values():
        try:
            frames, rate = utterance_frames(u)  # a segment's, for an utterance that is a stretch of its file
        except SerbenchError as exc:
            report.problems.append(str(exc))
            continue
        if frames == 0:
            report.problems.append(f"{u.path}: no samples")
            continue
        report.sample_rates[rate] += 1
        report.seconds.append(frames / rate)
    return report


def speaker_notes(protocol: Protocol) -> list[str]:
    """Where the speakers came from, and what a protocol shares between splits by design or by
    its folds, without refusing it."""
    notes = [f"speakers: {protocol.speaker_source}" + ("" if protocol.speakers_known else " (each utterance its own "
                                                       "pseudo-speaker: speaker-level statistics are utterance-level)")]
    if protocol.speaker_dependent:
        shared = protocol.shared_speakers("train", "test")
        notes.append(f"declared speaker-dependent: {len(shared)} of {len(protocol.folds)} folds share speakers "
                     "between train and test")
    dev_test = protocol.dev_test_speakers()
    if dev_test:
        notes.append(dev_test)
    return notes
