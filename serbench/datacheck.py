"""``serbench data check``: is this copy of a corpus the one the protocol was defined on?"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from serbench.audio import audio_info
from serbench.corpus import Protocol
from serbench.errors import SerbenchError


@dataclass
class Report:
    rows: list[tuple[str, int | None, int]]  # key, expected (None: not published), found
    problems: list[str] = field(default_factory=list)
    sample_rates: Counter = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(e is None or e == f for _, e, f in self.rows)


def check(protocol: Protocol) -> Report:
    """Every listed file present and readable, with its rate and duration; counts against
    the protocol's published ones."""
    found = protocol.counts()
    keys = list(protocol.expected) + sorted(k for k in found if k not in protocol.expected)
    report = Report([(k, protocol.expected.get(k), found.get(k, 0)) for k in keys])
    try:
        protocol.check_usable()
    except SerbenchError as exc:  # reported beside the counts, which say why
        report.problems.append(str(exc))
    for u in protocol.utterances.values():
        try:
            info = audio_info(u.path)
        except SerbenchError as exc:
            report.problems.append(str(exc))
            continue
        if info.frames == 0:
            report.problems.append(f"{u.path}: no samples")
            continue
        report.sample_rates[info.samplerate] += 1
        report.seconds.append(info.frames / info.samplerate)
    return report
