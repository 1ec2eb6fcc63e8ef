"""Tables every command that shows a result prints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from serbench.api.protocol import SPEAKERS_UNKNOWN
from serbench.report import leaderboard

if TYPE_CHECKING:
    from serbench.report.results import Result


def summary_table(result: Result, title: str | None = None) -> Table:
    table = Table(title=title or f"{result.run_id}  ({result.data['config']['protocol']}, "
                                 f"{len(result.data['folds'])} fold x seed jobs)")
    for column in ("metric", "mean %", "std", "95% CI (t, folds)", leaderboard.cluster_header(result.summary["ua"])):
        table.add_column(column, justify="right" if column != "metric" else "left")

    from serbench.report.stats import clip

    def span(interval: list[float] | None, why: str) -> str:
        interval = clip(interval)  # results written before intervals were clipped
        return why if interval is None else f"[{interval[0] * 100:.2f}, {interval[1] * 100:.2f}]"

    for metric, name in leaderboard.COLUMNS.items():
        entry = result.summary[metric]
        cluster = entry.get("cluster") or {}
        table.add_row(name, f"{entry['mean'] * 100:.2f}", f"{entry['std'] * 100:.2f}",
                      span(entry["ci95"], "n/a (1 fold)"),
                      span(entry["ci95_bootstrap"], "none: " + str(cluster.get("reason") or "too few clusters")))
    from serbench.report.beyond_table import table_rows

    extra = table_rows(result.data)
    if extra:
        table.add_section()
    for row in extra:
        table.add_row(*map(escape, row))
    return table


def run_notes(result: Result) -> list[str]:
    """What a reader of the table must know about its speakers: a speaker-dependent protocol
    (the score includes knowing the voice) and unknown speakers (the speaker-level columns
    resample utterances), and what the protocol left out and counted (``annotations.protocol``:
    cross_corpus's unmapped labels, audformat's rater ties). Empty for a result made before
    ``speakers`` was recorded."""
    record = result.data.get("speakers")
    if not isinstance(record, dict):
        return []
    notes = []
    if record.get("speaker_dependent"):
        notes.append("speaker-dependent protocol: the same speakers are in train and test")
    if record.get("known") is False:
        source = str(record.get("source"))
        where = "each utterance its own pseudo-speaker" if source == SPEAKERS_UNKNOWN else source
        notes.append(f"speakers unknown ({where}): speaker-level statistics are utterance-level")
    left_out = ((result.data.get("annotations") or {}).get("protocol") or {})
    for what, per_corpus in left_out.items() if isinstance(left_out, dict) else ():
        if isinstance(per_corpus, dict):  # e.g. cross_corpus's dropped_unmapped: {corpus: {label: count}}
            shown = "; ".join(f"{k}: " + (", ".join(f"{a} {n}" for a, n in v.items()) if isinstance(v, dict) else str(v))
                              for k, v in per_corpus.items())
            notes.append(f"{what.replace('_', ' ')} ({shown}): left out of the run")
    return notes
