"""Confidence intervals against scipy, and the speaker bootstrap on a case of known spread."""

import numpy as np
import pytest
from scipy import stats

from serbench.stats import fold_statistic, speaker_bootstrap, speaker_counts, summarize


@pytest.mark.parametrize("values", [[0.71, 0.74, 0.69, 0.77, 0.73], [0.5, 0.9], list(np.linspace(0.6, 0.8, 10))])
def test_ci95_matches_scipy_t_interval(values):
    got = summarize(values)
    expected = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert got["ci95"] == pytest.approx(list(expected))
    assert got["mean"] == pytest.approx(np.mean(values))
    assert got["std"] == pytest.approx(np.std(values, ddof=1))


def test_ci95_is_null_with_one_fold():
    assert summarize([0.7]) == {"mean": 0.7, "std": 0.0, "ci95": None}


def _counts(y_true, y_pred, speakers, num_classes=2, folds=None):
    """Per-speaker counts [S, J, K, K] for one job (or one job per fold: ``folds[i]`` per row)."""
    names = sorted(set(speakers))
    speaker_index = np.array([names.index(s) for s in speakers])
    job_index = np.zeros(len(y_true), dtype=int) if folds is None else np.asarray(folds)
    jobs = int(job_index.max()) + 1
    return speaker_counts(job_index, speaker_index, y_true, y_pred, len(names), jobs, num_classes), np.arange(jobs)


def _speakers_with_accuracies(accuracies, per_speaker=100):
    """Every speaker has ``per_speaker`` utterances of one class, a known share correct."""
    y_true, y_pred, speakers = [], [], []
    for s, acc in enumerate(accuracies):
        correct = int(round(acc * per_speaker))
        y_true += [0] * per_speaker
        y_pred += [0] * correct + [1] * (per_speaker - correct)
        speakers += [f"spk{s}"] * per_speaker
    return np.array(y_true), np.array(y_pred), speakers


def test_speaker_bootstrap_equals_the_t_interval_of_speaker_means():
    # With equal utterances per speaker, WA is the mean of the speakers' accuracies: the
    # calibrated bootstrap interval is then scipy's t interval over those S means.
    rng = np.random.default_rng(0)
    accuracies = np.round(rng.uniform(0.4, 1.0, 12), 2)
    counts, folds = _counts(*_speakers_with_accuracies(accuracies))
    lo, hi = speaker_bootstrap(counts, folds, resamples=20000, seed=1)["wa"]
    expected = stats.t.interval(0.95, len(accuracies) - 1, loc=accuracies.mean(), scale=stats.sem(accuracies))
    assert (lo + hi) / 2 == pytest.approx(accuracies.mean())  # centred on its own estimate
    assert [lo, hi] == pytest.approx(list(expected), abs=0.01)


def test_speaker_bootstrap_is_wider_than_treating_utterances_as_independent():
    accuracies = [0.3, 0.9, 0.35, 0.95, 0.4, 0.85, 0.5, 0.8]
    y_true, y_pred, speakers = _speakers_with_accuracies(accuracies)
    lo, hi = speaker_bootstrap(*_counts(y_true, y_pred, speakers), seed=0)["wa"]
    lo_u, hi_u = speaker_bootstrap(*_counts(y_true, y_pred, [str(i) for i in range(len(y_true))]), seed=0)["wa"]
    assert (hi - lo) > 3 * (hi_u - lo_u)


def test_speaker_bootstrap_is_seeded_and_no_spread_when_all_equal():
    counts, folds = _counts(*_speakers_with_accuracies([0.8] * 6))
    a = speaker_bootstrap(counts, folds, seed=3)
    assert a == speaker_bootstrap(counts, folds, seed=3)
    assert a["wa"] == pytest.approx([0.8, 0.8])


def _simulated_corpus(rng, speakers=10, per_speaker=100, classes=4):
    """Speakers differ in how well the system recognises them (a speaker effect on accuracy)."""
    y_true = rng.integers(0, classes, (speakers, per_speaker))
    accuracy = np.clip(0.6 + rng.normal(0, 0.12, (speakers, 1)), 0.05, 0.95)
    correct = rng.random((speakers, per_speaker)) < accuracy
    y_pred = np.where(correct, y_true, (y_true + rng.integers(1, classes, y_true.shape)) % classes)
    return y_true.ravel(), y_pred.ravel(), np.repeat(np.arange(speakers), per_speaker)


def test_speaker_bootstrap_holds_its_coverage_with_ten_speakers():
    """400 corpora of 10 speakers x 100 utterances (IEMOCAP's count), five folds of 2 test
    speakers each: the 95% interval of the mean UA over folds covers the population value
    92-98.5% of the time (the percentile interval it replaces covered ~88%)."""
    speakers = 10
    rng = np.random.default_rng(7)
    truth = []  # the population value: the same statistic on many folds of S/5 new speakers
    for _ in range(400):
        y_true, y_pred, spk = _simulated_corpus(rng, speakers)
        counts, _ = _counts(y_true, y_pred, [str(s) for s in spk], 4, folds=spk % 5)
        truth.append(fold_statistic(counts, np.arange(5))["ua"][0])
    target = float(np.mean(truth))
    covered = 0
    for _ in range(400):
        y_true, y_pred, spk = _simulated_corpus(rng, speakers)
        counts, _ = _counts(y_true, y_pred, [str(s) for s in spk], 4, folds=spk % 5)
        lo, hi = speaker_bootstrap(counts, np.arange(5), resamples=500, seed=int(rng.integers(1 << 30)))["ua"]
        covered += lo <= target <= hi
    assert 0.92 <= covered / 400 <= 0.985
