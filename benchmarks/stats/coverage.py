"""Coverage of serbench's 95% intervals, simulated against a known truth.

Each design draws corpora whose utterances are recognised with a probability that depends on
the class, the speaker (a random effect on the logit) and, where stated, the fold (an effect
shared by every speaker tested in that fold: IEMOCAP's sessions). Predictions are scored as a
run scores them (:func:`serbench.report.stats.fold_statistic`), and each replicate's intervals are
the ones serbench writes (:func:`serbench.report.stats.cluster_interval` and the Student-t over
folds). The truth is the statistic's expectation under the design (the mean over
``TRUTH_DRAWS`` corpora). Coverage = share of replicates whose interval holds the truth.

    python benchmarks/stats/coverage.py [--replicates 2000] [--page docs/protocols-and-statistics.md]

writes the table to stdout, and between the page's ``<!-- simulated: coverage -->`` markers
with ``--page``. ``tests/report/test_coverage.py`` runs the same designs and asserts >= 93%.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit

from serbench.report.metrics import METRICS
from serbench.report.stats import cluster_interval, fold_statistic, job_statistic, summarize

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling docs_block, also when loaded by file
import docs_block  # noqa: E402

TRUTH_DRAWS = 20_000
NAMES = {"ua": "UA", "wa": "WA", "macro_f1": "macro-F1"}


@dataclass(frozen=True)
class Design:
    name: str
    speakers_per_fold: tuple[int, ...]  # one entry per fold
    utterances: int = 100  # per speaker
    big_speaker: int = 1  # the first speaker has this many times the utterances
    priors: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25)
    speaker_sd: float = 0.5  # logit scale
    fold_sd: float = 0.0
    crossed: bool = False  # each speaker's utterances spread over every fold's test set


DESIGNS = (
    Design("10 speakers in 5 folds", (2,) * 5),
    Design("10 speakers, one per fold (LOSO)", (1,) * 10),
    Design("5 speakers, one per fold", (1,) * 5),
    Design("10 speakers in 5 folds, shared fold effect", (2,) * 5, fold_sd=0.5),
    Design("40 speakers in 5 folds", (8,) * 5),
    Design("unbalanced: 10 speakers in 5 folds, one with 10x, skewed classes", (2,) * 5, big_speaker=10,
           priors=(0.55, 0.25, 0.12, 0.08)),
    Design("5 speakers, one test split", (5,)),
    Design("40 speakers, one test split", (40,)),
    Design("unbalanced: 10 speakers, one test split, one with 10x, skewed classes", (10,), big_speaker=10,
           priors=(0.55, 0.25, 0.12, 0.08)),
    Design("10 speakers crossed with 5 folds (speaker-dependent)", (10,) * 5, utterances=20, crossed=True),
)


def draw(design: Design, rng: np.random.Generator, corpora: int) -> tuple[np.ndarray, np.ndarray]:
    """``[R, S, J, K, K]`` confusion counts of ``corpora`` simulated runs, and fold_of_job."""
    folds = len(design.speakers_per_fold)
    if design.crossed:
        speakers = design.speakers_per_fold[0]
        home = None
    else:
        speakers = sum(design.speakers_per_fold)
        home = np.repeat(np.arange(folds), design.speakers_per_fold)  # the fold that tests each speaker
    k = len(design.priors)
    sizes = np.full(speakers, design.utterances)
    sizes[0] *= design.big_speaker
    class_logit = np.linspace(1.2, 0.2, k)  # some classes are easier than others
    speaker = rng.normal(0, design.speaker_sd, (corpora, speakers))
    fold = rng.normal(0, design.fold_sd, (corpora, folds)) if design.fold_sd else np.zeros((corpora, folds))
    counts = np.zeros((corpora, speakers, folds, k, k))
    for f in range(folds):
        tested = np.arange(speakers) if home is None else np.flatnonzero(home == f)
        n = sizes[tested] // (folds if home is None else 1)
        labels = rng.multinomial(np.broadcast_to(n, (corpora, len(n))), design.priors)  # [R, s, K]
        p = expit(class_logit[None, None, :] + speaker[:, tested, None] + fold[:, f, None, None])
        correct = rng.binomial(labels, p)
        wrong = labels - correct
        for c in range(k):
            others = [o for o in range(k) if o != c]
            spread = rng.multinomial(wrong[..., c], np.full(k - 1, 1 / (k - 1)))  # [R, s, K-1]
            block = np.zeros((corpora, len(tested), k))
            block[..., c] = correct[..., c]
            block[..., others] = spread
            counts[:, tested, f, c, :] = block
    return counts, np.arange(folds)


def truth(design: Design, rng: np.random.Generator) -> dict[str, float]:
    """The statistic's expectation under the design."""
    values = {m: [] for m in METRICS}
    for _ in range(TRUTH_DRAWS // 2000):
        counts, fold_of_job = draw(design, rng, 2000)
        per_job = counts.sum(1)  # [R, J, K, K]
        for m, v in job_statistic(per_job, fold_of_job).items():
            values[m].append(v)
    return {m: float(np.concatenate(v).mean()) for m, v in values.items()}


def coverage(design: Design, replicates: int, seed: int = 0) -> dict:
    """Per metric: the share of ``replicates`` runs whose cluster / t interval holds the truth,
    the mean width of each, and how many runs had no interval."""
    rng = np.random.default_rng(seed)
    target = truth(design, rng)
    counts, fold_of_job = draw(design, rng, replicates)
    hits = {m: {"cluster": 0, "t": 0, "none": 0, "t_none": 0, "width": 0.0, "t_width": 0.0} for m in METRICS}
    unit = None
    for r in range(replicates):
        intervals, plan = cluster_interval(counts[r], fold_of_job)
        unit = plan.describe()
        per_fold = fold_statistic(counts[r], fold_of_job, fold_weights=np.eye(len(fold_of_job)))
        for m in METRICS:
            row = hits[m]
            if intervals[m] is None:
                row["none"] += 1
            else:
                row["cluster"] += intervals[m][0] <= target[m] <= intervals[m][1]
                row["width"] += intervals[m][1] - intervals[m][0]
            t = summarize(per_fold[m])["ci95"]
            if t is None:
                row["t_none"] += 1
            else:
                row["t"] += t[0] <= target[m] <= t[1]
                row["t_width"] += t[1] - t[0]
    out = {"design": design.name, "unit": unit, "replicates": replicates, "metrics": {}}
    for m, row in hits.items():
        scored, t_scored = replicates - row["none"], replicates - row["t_none"]
        out["metrics"][m] = {
            "cluster": row["cluster"] / scored if scored else None,
            "cluster_width": row["width"] / scored if scored else None,
            "t": row["t"] / t_scored if t_scored else None,
            "t_width": row["t_width"] / t_scored if t_scored else None,
        }
    return out


def table(rows: list[dict]) -> str:
    def pct(x):
        return "—" if x is None else f"{100 * x:.1f}"

    lines = ["| design | resampled | metric | cluster interval: coverage % (mean width, pp) | "
             "t over folds: coverage % (mean width, pp) |", "|---|---|---|---|---|"]
    for row in rows:
        for m, got in row["metrics"].items():
            lines.append(f"| {row['design']} | {row['unit']} | {NAMES[m]} | {pct(got['cluster'])} "
                         f"({pct(got['cluster_width'])}) | {pct(got['t'])} ({pct(got['t_width'])}) |")
    return "\n".join(lines)


def report(replicates: int) -> tuple[list[dict], str]:
    """Every design's coverage (seeded: the same text each time) and the docs page's text."""
    rows = [coverage(d, replicates, seed=i) for i, d in enumerate(DESIGNS)]
    return rows, (f"Nominal 95%; {replicates} simulated runs per design (seeded), the truth the "
                  f"statistic's expectation over {TRUTH_DRAWS:,} more.\n\n" + table(rows))


def main(argv: list[str] | None = None) -> int:
    return docs_block.main(argv, __doc__.splitlines()[0], "coverage", 2000, report)


if __name__ == "__main__":
    raise SystemExit(main())
