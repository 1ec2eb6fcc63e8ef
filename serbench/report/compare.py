"""Paired comparison of systems scored on the same test utterances.

The statistic is the table's: each metric per (fold, seed) job, averaged over seeds, then over
folds. Two runs are paired only when they scored the same utterances with the same labels in
every (fold, seed) job.

- **p-value: speaker-block paired permutation.** Under the null the two systems are
  exchangeable within a speaker, so the predictions of both systems are swapped for all of one
  speaker's utterances at once (in every fold and seed), for every subset of speakers (exact,
  2^S sets, when S <= ``EXACT_SPEAKERS``) or for ``resamples`` random subsets. Two-sided:
  p = share of swaps whose |difference| is at least the observed one (the observed set
  included, so p >= 2/2^S exactly: the floor is stated with the result). Utterance-level tests
  (McNemar, an utterance bootstrap) ignore that one speaker's utterances share a system-by-
  speaker effect and reject a true null far too often.
- **Interval of the difference: the permutation test inverted.** The interval holds every
  difference d that the same test would not reject at 5% were the truth d: under the shift
  model (the systems differ by d, the swap distribution of the centred difference is the
  null's), that is observed ± c, where c is the smallest swap difference |D*| that at least 5%
  of the swaps reach. So p >= 0.05 exactly when the interval holds 0: the table can never
  show p = 0.2 beside an interval that excludes 0 (Ernst 2004, *Statist. Sci.* 19:676, §4;
  Lehmann & Romano, *Testing Statistical Hypotheses*, §5.8). The shift model is approximate
  for recall-type metrics; under a true difference the swaps spread wider than the null, so
  the interval errs wide (simulated in tests/report/test_compare.py). A bootstrap interval beside a
  permutation p-value resamples another way around another null, and disagreed with it in
  ~9.5% of null comparisons.
- More than two systems: every pair, or each against ``baseline``, with Holm's step-down
  correction of the p-values over the comparisons made.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from serbench.api.errors import SerbenchError
from serbench.report.dimension_results import dimensions_of, prediction_columns, result_metrics
from serbench.report.metrics import METRICS
from serbench.report.results import Result, SpeakerCounts, load_runs, read_run_predictions, speaker_table
from serbench.report.stats import job_statistic

ALPHA = 0.05
TIE = 1e-12  # differences equal up to float rounding count as reached
EXACT_SPEAKERS = 14  # 2^14 = 16,384 swap sets: enumerated; more speakers: random swaps


def _predictions(result: Result) -> pd.DataFrame:
    """The run's predictions.csv, refused when it is not the file its run wrote."""
    return read_run_predictions(result)


def _cells_checked(frame: pd.DataFrame, result: Result) -> pd.DataFrame:
    """``frame`` with every cell the test reads present and every seed an integer; else one error
    naming the file and line (a result written before predictions carried a checksum can hold an
    edited file: a truncated last row, a seed typed as a word)."""
    path = result.dir.predictions
    for column in ("fold", "seed", "utterance_id", "speaker", "label", *prediction_columns(result.data)):
        empty = frame[column].isna() | (frame[column].astype(str).str.strip() == "")
        if empty.any():
            raise SerbenchError(f"{path}:{int(np.argmax(empty.to_numpy())) + 2}: empty {column} (a truncated or edited file; "
                                f"rerun serbench finish {result.run_dir})")
    seeds = pd.to_numeric(frame["seed"], errors="coerce")
    bad = seeds.isna() | (seeds != seeds.round())
    if bad.any():
        row = int(np.argmax(bad.to_numpy()))
        raise SerbenchError(f"{path}:{row + 2}: seed {str(frame['seed'].iloc[row])[:40]!r} is not an integer (an edited "
                            f"file; rerun serbench finish {result.run_dir})")
    return frame.assign(seed=seeds.astype(np.int64), fold=frame["fold"].astype(str))


def _check_pairing(a: Result, b: Result, pa: pd.DataFrame, pb: pd.DataFrame) -> None:
    """Refuse, naming the first mismatching comparability part (protocol, corpus, classes, test
    split, metric definitions), job or utterance. The extraction precision is the one part a
    paired test may span: the same task scored with features extracted in fp32 and in bf16 is
    how the precision's cost is measured (the comparison records both precisions)."""
    from serbench.report.results import comparability_difference, comparability_of

    differs = comparability_difference(comparability_of(a), comparability_of(b), ignore=("precision",))
    if differs:
        raise SerbenchError(f"serbench compare: {a.run_dir} and {b.run_dir} are not comparable: {differs}; a paired "
                            "comparison needs one comparability key")
    ja, jb = (set(zip(p["fold"], p["seed"])) for p in (pa, pb))
    if ja != jb:
        only = sorted(ja ^ jb)[0]
        side = a.run_dir if only in ja else b.run_dir
        raise SerbenchError(f"fold {only[0]} seed {only[1]} is only in {side}: compare runs with the same folds and "
                            "seeds (serbench status, or rerun with the same --seeds)")
    for (fold, seed), group_a in pa.groupby(["fold", "seed"], sort=True):
        group_b = pb[(pb["fold"] == fold) & (pb["seed"] == seed)]
        left, right = group_a.set_index("utterance_id"), group_b.set_index("utterance_id")
        if set(left.index) != set(right.index):
            uid = sorted(set(left.index) ^ set(right.index))[0]
            raise SerbenchError(f"fold {fold} seed {seed}: utterance {uid} is scored by only one of {a.run_dir} and "
                                f"{b.run_dir}; a paired comparison needs the same test utterances")
        differs = left["label"] != right.loc[left.index, "label"]
        if differs.any():
            uid = differs[differs].index[0]
            raise SerbenchError(f"fold {fold} seed {seed}: utterance {uid} has label {left.loc[uid, 'label']} in "
                                f"{a.run_dir} but {right.loc[uid, 'label']} in {b.run_dir}")


def swap_sets(speakers: int, resamples: int, seed: int) -> tuple[np.ndarray, bool]:
    """``[P, S]`` 0/1 rows: which speakers' predictions are swapped; exact enumeration (the
    observed, all-zero row first) when 2^S is small, else the observed row and random ones."""
    if speakers <= EXACT_SPEAKERS:
        grid = (np.arange(2 ** speakers)[:, None] >> np.arange(speakers)[None, :]) & 1
        return grid.astype(np.float64), True
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, 2, size=(resamples, speakers)).astype(np.float64)
    return np.vstack([np.zeros((1, speakers)), draws]), False


def permutation_p(a: SpeakerCounts, b: SpeakerCounts, resamples: int = 10_000, seed: int = 0,
                  chunk: int = 4096, statistic=job_statistic, metrics: Sequence[str] = METRICS) -> dict:
    """Two-sided p-value per metric of the speaker-block paired permutation test, and the 95%
    interval of the difference that inverts it (see the module docstring). ``statistic`` maps
    per-job sums ``[R, J, ...]`` to the table's values: confusion counts by default; a
    dimensional run's per-speaker sums (:func:`serbench.report.dimension_stats.table_statistic`) swap
    the same way, a speaker's predictions at once."""
    swaps, exact = swap_sets(len(a.speakers), resamples, seed)
    observed = {m: float(statistic(a.counts.sum(0)[None], a.fold_of_job)[m][0]
                         - statistic(b.counts.sum(0)[None], b.fold_of_job)[m][0]) for m in metrics}
    spread: dict[str, list[np.ndarray]] = {m: [] for m in metrics}
    delta = b.counts - a.counts  # [S, J, K, K]: what swapping one speaker moves from A to B
    total_a, total_b = a.counts.sum(0), b.counts.sum(0)  # [J, K, K]
    for start in range(0, len(swaps), chunk):
        moved = np.einsum("ps,sjkl->pjkl", swaps[start : start + chunk], delta)
        va = statistic(total_a[None] + moved, a.fold_of_job)
        vb = statistic(total_b[None] - moved, a.fold_of_job)
        for m in metrics:
            spread[m].append(np.abs(va[m] - vb[m]))
    p, interval = {}, {}
    for m in metrics:
        swapped = np.sort(np.concatenate(spread[m]))[::-1]  # |D*|, largest first
        p[m] = int((swapped >= abs(observed[m]) - TIE).sum()) / len(swaps)
        reach = swapped[max(int(np.ceil(ALPHA * len(swaps))) - 1, 0)]  # reached by >= 5% of the swaps
        interval[m] = [observed[m] - reach - TIE, observed[m] + reach + TIE]
    return {"p": p, "observed": observed, "ci95": interval, "exact": exact, "swaps": len(swaps),
            "p_floor": 2.0 / len(swaps) if exact else 1.0 / len(swaps)}


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error over the comparisons made)."""
    order = np.argsort(p_values)
    adjusted = np.empty(len(p_values))
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted.tolist()


def compare(run_dirs: Sequence[str | Path], baseline: str | Path | None = None, resamples: int = 10_000,
            seed: int = 0) -> dict:
    """Every pair of runs (or each against ``baseline``): per metric, the difference A - B in
    the table's statistic, its 95% interval, the permutation p-value and Holm's adjustment."""
    results = load_runs(run_dirs, "compare")
    frames = [_cells_checked(_predictions(r), r) for r in results]
    for r, f in zip(results[1:], frames[1:]):
        _check_pairing(results[0], r, frames[0], f)
    scored, statistic, names = _swappable(results, [_aligned(f, frames[0]) for f in frames])
    jobs, speakers = scored[0].jobs, scored[0].speakers
    if baseline is None:
        pairs = list(itertools.combinations(range(len(scored)), 2))
    else:
        base = [k for k, r in enumerate(results) if Path(r.run_dir).resolve() == Path(baseline).resolve()]
        if not base:
            raise SerbenchError(f"--baseline {baseline}: not one of the runs compared")
        pairs = [(k, base[0]) for k in range(len(scored)) if k != base[0]]
    rows = []
    for i, j in pairs:
        test = permutation_p(scored[i], scored[j], resamples, seed, statistic=statistic, metrics=names)
        rows.append({"a": str(results[i].run_dir), "b": str(results[j].run_dir),
                     "a_id": results[i].run_id, "b_id": results[j].run_id,
                     "metrics": {m: {"difference": test["observed"][m], "ci95": test["ci95"][m], "p": test["p"][m]}
                                 for m in names},
                     "exact": test["exact"], "swaps": test["swaps"], "p_floor": test["p_floor"]}
                    | _precisions(results[i], results[j]))
    for m in names:
        for row, adjusted in zip(rows, holm([row["metrics"][m]["p"] for row in rows])):
            row["metrics"][m]["p_holm"] = adjusted
    return {"schema": "serbench.compare/1", "protocol": results[0].data["config"]["protocol"],
            "speakers": len(speakers), "jobs": [list(j) for j in jobs],
            "test": "speaker-block paired permutation (two-sided)",
            "interval": "the permutation test inverted (observed ± the swap difference 5% of swaps reach)",
            "statistic": "per (fold, seed) job, mean over seeds, then over folds (as in the table)",
            "baseline": str(baseline) if baseline else None, "comparisons": rows}


def _precisions(a: Result, b: Result) -> dict:
    """``{"extraction_precision": {"a": ..., "b": ...}}`` when the two runs' features were
    extracted in different precisions (a comparison of the precisions), else nothing."""
    from serbench.report.results import PRECISION_DEFAULT, comparability_of

    found = [comparability_of(r).get("precision", PRECISION_DEFAULT) for r in (a, b)]
    return {"extraction_precision": dict(zip("ab", found))} if found[0] != found[1] else {}


def _swappable(results: list[Result], frames: list[pd.DataFrame]):
    """Per run, its predictions as per-speaker sums the permutation swaps, the table's
    statistic of such sums, and the metric names: confusion counts and UA/WA/macro-F1 for a
    categorical run; for a dimensional one the sums of prediction and reference per speaker and
    dimension (:mod:`serbench.report.dimension_stats`), and CCC, Pearson r, MAE."""
    dims = dimensions_of(results[0].data)
    if not dims:
        return [speaker_table(f, r.data["classes"]) for r, f in zip(results, frames)], job_statistic, METRICS
    from serbench.report.dimension_stats import speaker_moments, table_statistic

    tables = []
    for frame in frames:
        sums, speakers, fold_of_job = speaker_moments(frame, dims)
        jobs = list(dict.fromkeys(zip(frame["fold"].astype(str), frame["seed"].astype(int))))
        tables.append(SpeakerCounts(sums, speakers, jobs, fold_of_job))
    return tables, partial(table_statistic, dimensions=dims), result_metrics(results[0].data)


def _aligned(frame: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s rows in ``reference``'s order (same jobs, utterances: checked before), so
    both runs give the same job and speaker order."""
    key = ["fold", "seed", "utterance_id"]
    return reference[key].merge(frame, on=key, how="left", validate="one_to_one")
