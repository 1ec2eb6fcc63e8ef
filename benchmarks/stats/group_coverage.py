"""Coverage of the female - male difference's 95% interval (:mod:`serbench.report.groups`),
simulated against a known truth.

Each design draws corpora with as many female as male speakers; an utterance is recognised
with probability ``expit(class + speaker + fold + sex)``: a random effect per speaker, an
effect per fold shared by every speaker that fold tests (one model, one recording set-up: the
dependence that makes folds the clusters), and a fixed sex effect (``+shift/2`` female,
``-shift/2`` male), so the true difference is not zero. Each replicate is scored as a run
scores it (:func:`serbench.report.groups.compare_groups`); the truth is the expectation of the
statistic under the design (the mean over ``TRUTH_DRAWS`` more corpora). Coverage = share of
replicates whose interval holds the truth; "separate" is what two per-group intervals
combined as if independent would give (sqrt of the summed squared half-widths), for contrast.

    python benchmarks/stats/group_coverage.py [--replicates 1000] [--page docs/protocols-and-statistics.md]

writes the table to stdout, and between the ``<!-- simulated: group coverage -->`` markers of the page given to
markers with ``--readme``. ``tests/test_groups.py`` runs the same designs and asserts >= 92%.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit

from serbench.report.groups import GENDERS, compare_groups
from serbench.report.stats import job_statistic

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling docs_block, also when loaded by file
import docs_block  # noqa: E402

TRUTH_DRAWS = 20_000
NAMES = {"ua": "UA", "wa": "WA", "macro_f1": "macro-F1"}
K = 4


@dataclass(frozen=True)
class Design:
    name: str
    folds: int
    pairs_per_fold: int  # female-male speaker pairs each fold tests
    utterances: int = 60  # per speaker
    speaker_sd: float = 0.5  # logit scale
    fold_sd: float = 0.5
    shift: float = 0.4  # female minus male, logit scale


DESIGNS = (
    Design("5 folds, one female and one male speaker each (IEMOCAP sessions)", 5, 1),
    Design("10 folds, one female and one male speaker each", 10, 1),
    Design("5 folds, 4 + 4 speakers each, no fold effect", 5, 4, fold_sd=0.0),
    Design("one test split, 20 + 20 speakers", 1, 20, fold_sd=0.0),
    Design("one test split, 6 + 6 speakers", 1, 6, fold_sd=0.0),
)


def draw(design: Design, rng: np.random.Generator, corpora: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per sex ``[R, S, J, K, K]`` confusion counts (speakers 2i female, 2i+1 male; each
    tested by one fold), and fold_of_job."""
    pairs = design.folds * design.pairs_per_fold
    speakers = 2 * pairs
    home = np.repeat(np.arange(design.folds), 2 * design.pairs_per_fold)
    female = np.arange(speakers) % 2 == 0
    class_logit = np.linspace(1.2, 0.2, K)
    logit = (rng.normal(0, design.speaker_sd, (corpora, speakers))
             + rng.normal(0, design.fold_sd, (corpora, design.folds))[:, home]
             + np.where(female, design.shift / 2, -design.shift / 2)[None, :])
    labels = rng.multinomial(np.full((corpora, speakers), design.utterances), np.full(K, 1 / K))  # [R, S, K]
    correct = rng.binomial(labels, expit(class_logit[None, None, :] + logit[..., None]))
    counts = np.zeros((corpora, speakers, design.folds, K, K))
    for c in range(K):
        others = [o for o in range(K) if o != c]
        spread = rng.multinomial(labels[..., c] - correct[..., c], np.full(K - 1, 1 / (K - 1)))
        for s in range(speakers):
            counts[:, s, home[s], c, c] = correct[:, s, c]
            counts[:, s, home[s], c, others] = spread[:, s]
    by_sex = {"F": counts * female[None, :, None, None, None], "M": counts * ~female[None, :, None, None, None]}
    return by_sex, np.arange(design.folds)


def truth(design: Design, rng: np.random.Generator) -> dict[str, float]:
    """The expectation of the female - male statistic under the design."""
    values: dict[str, list] = {}
    for _ in range(TRUTH_DRAWS // 2000):
        by_sex, fold_of_job = draw(design, rng, 2000)
        f = job_statistic(by_sex["F"].sum(1), fold_of_job)
        m = job_statistic(by_sex["M"].sum(1), fold_of_job)
        for metric in f:
            values.setdefault(metric, []).append(f[metric] - m[metric])
    return {metric: float(np.concatenate(v).mean()) for metric, v in values.items()}


def coverage(design: Design, replicates: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    target = truth(design, rng)
    by_sex, fold_of_job = draw(design, rng, replicates)
    hits = {m: {"joint": 0, "separate": 0, "width": 0.0, "separate_width": 0.0, "none": 0} for m in target}
    unit = None
    for r in range(replicates):
        found = compare_groups({g: by_sex[g][r] for g in GENDERS}, fold_of_job)
        unit = f"{found['design']['clusters']} {found['design']['unit']}s"
        for m, row in hits.items():
            interval = found["difference"][m]["ci95"]
            if interval is None:
                row["none"] += 1
                continue
            row["joint"] += interval[0] <= target[m] <= interval[1]
            row["width"] += interval[1] - interval[0]
            halves = [(found["groups"][g][m]["ci95"][1] - found["groups"][g][m]["ci95"][0]) / 2 for g in GENDERS]
            centre, half = found["difference"][m]["mean"], float(np.hypot(*halves))
            row["separate"] += centre - half <= target[m] <= centre + half
            row["separate_width"] += 2 * half
    out = {"design": design.name, "unit": unit, "truth": target, "metrics": {}}
    for m, row in hits.items():
        n = replicates - row["none"]
        out["metrics"][m] = {"joint": row["joint"] / n if n else None, "width": row["width"] / n if n else None,
                             "separate": row["separate"] / n if n else None,
                             "separate_width": row["separate_width"] / n if n else None}
    return out


def table(rows: list[dict]) -> str:
    def pct(x):
        return "—" if x is None else f"{100 * x:.1f}"

    lines = ["| design | resampled | metric | true F - M (pp) | joint interval: coverage % (mean width, pp) | "
             "two separate intervals: coverage % (mean width, pp) |", "|---|---|---|---|---|---|"]
    for row in rows:
        for m, got in row["metrics"].items():
            lines.append(f"| {row['design']} | {row['unit']} | {NAMES[m]} | {100 * row['truth'][m]:+.1f} | "
                         f"{pct(got['joint'])} ({pct(got['width'])}) | {pct(got['separate'])} "
                         f"({pct(got['separate_width'])}) |")
    return "\n".join(lines)


def report(replicates: int) -> tuple[list[dict], str]:
    """Every design's coverage (seeded: the same text each time) and the docs page's text."""
    rows = [coverage(d, replicates, seed=i) for i, d in enumerate(DESIGNS)]
    return rows, (f"Nominal 95%; {replicates} simulated runs per design (seeded), the truth the "
                  f"statistic's expectation over {TRUTH_DRAWS:,} more.\n\n" + table(rows))


def main(argv: list[str] | None = None) -> int:
    return docs_block.main(argv, __doc__.splitlines()[0], "group coverage", 1000, report)


if __name__ == "__main__":
    raise SystemExit(main())
