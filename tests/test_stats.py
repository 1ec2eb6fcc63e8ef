"""Confidence intervals against scipy, and the speaker bootstrap on a case of known spread."""

import numpy as np
import pytest
from scipy import stats

from serbench.stats import speaker_bootstrap, summarize


@pytest.mark.parametrize("values", [[0.71, 0.74, 0.69, 0.77, 0.73], [0.5, 0.9], list(np.linspace(0.6, 0.8, 10))])
def test_ci95_matches_scipy_t_interval(values):
    got = summarize(values)
    expected = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert got["ci95"] == pytest.approx(list(expected))
    assert got["mean"] == pytest.approx(np.mean(values))
    assert got["std"] == pytest.approx(np.std(values, ddof=1))


def test_ci95_is_null_with_one_fold():
    assert summarize([0.7]) == {"mean": 0.7, "std": 0.0, "ci95": None}


def _speakers_with_accuracies(accuracies, per_speaker=100):
    """Every speaker has ``per_speaker`` utterances of one class, a known share correct."""
    y_true, y_pred, speakers = [], [], []
    for s, acc in enumerate(accuracies):
        correct = int(round(acc * per_speaker))
        y_true += [0] * per_speaker
        y_pred += [0] * correct + [1] * (per_speaker - correct)
        speakers += [f"spk{s}"] * per_speaker
    return np.array(y_true), np.array(y_pred), speakers


def test_speaker_bootstrap_has_the_spread_of_the_speaker_means():
    # WA is the mean of the resampled speakers' accuracies, so its bootstrap distribution
    # has standard deviation std(acc) / sqrt(S) (population std), about normal for S = 40.
    rng = np.random.default_rng(0)
    accuracies = np.round(rng.uniform(0.4, 1.0, 40), 2)
    y_true, y_pred, speakers = _speakers_with_accuracies(accuracies)
    lo, hi = speaker_bootstrap(y_true, y_pred, speakers, 2, resamples=4000, seed=1)["wa"]
    sigma = accuracies.std() / np.sqrt(len(accuracies))
    assert (hi - lo) == pytest.approx(2 * 1.96 * sigma, rel=0.1)
    assert lo < accuracies.mean() < hi


def test_speaker_bootstrap_is_wider_than_treating_utterances_as_independent():
    accuracies = [0.3, 0.9, 0.35, 0.95, 0.4, 0.85, 0.5, 0.8]
    y_true, y_pred, speakers = _speakers_with_accuracies(accuracies)
    lo, hi = speaker_bootstrap(y_true, y_pred, speakers, 2, seed=0)["wa"]
    lo_u, hi_u = speaker_bootstrap(y_true, y_pred, [str(i) for i in range(len(y_true))], 2, seed=0)["wa"]
    assert (hi - lo) > 3 * (hi_u - lo_u)


def test_speaker_bootstrap_is_seeded_and_no_spread_when_all_equal():
    y_true, y_pred, speakers = _speakers_with_accuracies([0.8] * 6)
    a = speaker_bootstrap(y_true, y_pred, speakers, 2, seed=3)
    assert a == speaker_bootstrap(y_true, y_pred, speakers, 2, seed=3)
    assert a["wa"] == pytest.approx([0.8, 0.8])
