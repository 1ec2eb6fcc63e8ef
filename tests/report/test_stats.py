"""Confidence intervals against scipy and hand computations: the t interval over folds and the
cluster interval in each design (nested folds, one split, crossed, too few clusters)."""

import numpy as np
import pytest
from scipy import stats

from serbench.report.stats import clip, cluster_interval, design, speaker_counts, summarize


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


def test_folds_as_clusters_give_scipys_t_interval_over_folds():
    # Speakers nested in five folds: the fold is the cluster, and the jackknife interval of the
    # mean over folds is exactly scipy's t interval over the five fold values.
    rng = np.random.default_rng(0)
    accuracies = np.round(rng.uniform(0.4, 0.9, 10), 2)
    y_true, y_pred, speakers = _speakers_with_accuracies(accuracies)
    counts, _ = _counts(y_true, y_pred, speakers, folds=np.repeat(np.arange(10) % 5, 100))
    intervals, plan = cluster_interval(counts, np.arange(5))
    per_fold = [accuracies[[f, f + 5]].mean() for f in range(5)]
    expected = stats.t.interval(0.95, 4, loc=np.mean(per_fold), scale=stats.sem(per_fold))
    assert (plan.unit, plan.clusters, plan.df) == ("fold", 5, 4.0)
    assert intervals["wa"] == pytest.approx(list(expected))


def test_speakers_as_clusters_in_one_split_give_the_t_interval_of_speaker_means():
    # One test split, equal utterances per speaker: WA is the mean of the speakers' accuracies,
    # and the delete-one-speaker jackknife interval is scipy's t interval over those S means.
    accuracies = np.round(np.random.default_rng(0).uniform(0.4, 1.0, 12), 2)
    counts, folds = _counts(*_speakers_with_accuracies(accuracies))
    intervals, plan = cluster_interval(counts, folds)
    expected = stats.t.interval(0.95, len(accuracies) - 1, loc=accuracies.mean(), scale=stats.sem(accuracies))
    assert (plan.unit, plan.clusters, plan.df) == ("speaker", 12, 11.0)
    assert intervals["wa"] == pytest.approx(list(expected))


def test_unequal_speakers_lower_the_degrees_of_freedom_kish():
    # One speaker holds half the split: Kish's effective number of clusters (sum n)^2 / sum n^2.
    y_true, y_pred, speakers = _speakers_with_accuracies([0.6] * 6)
    y_true, y_pred = np.concatenate([y_true, [0] * 500]), np.concatenate([y_pred, [0] * 250 + [1] * 250])
    counts, folds = _counts(y_true, y_pred, speakers + ["spk0"] * 500)
    plan = design(counts, folds)
    sizes = np.array([600] + [100] * 5)
    assert plan.df == pytest.approx(sizes.sum() ** 2 / (sizes ** 2).sum() - 1, abs=1e-3)


def test_crossed_speakers_and_folds_add_both_components():
    # Each speaker tested in every fold (speaker-dependent): variance = speaker jackknife +
    # fold jackknife, computed here by hand for WA with equal cells.
    rng = np.random.default_rng(3)
    acc = np.round(rng.uniform(0.3, 0.9, (6, 5)), 2)  # [speaker, fold]
    y_true, y_pred, speakers, folds = [], [], [], []
    for s in range(6):
        for f in range(5):
            correct = int(round(acc[s, f] * 100))
            y_true += [0] * 100
            y_pred += [0] * correct + [1] * (100 - correct)
            speakers += [f"spk{s}"] * 100
            folds += [f] * 100
    counts, fold_of_job = _counts(np.array(y_true), np.array(y_pred), speakers, folds=folds)
    intervals, plan = cluster_interval(counts, fold_of_job)
    drop_speaker = np.array([np.delete(acc, s, 0).mean() for s in range(6)])
    drop_fold = np.array([np.delete(acc, f, 1).mean() for f in range(5)])
    variance = 5 / 6 * ((drop_speaker - drop_speaker.mean()) ** 2).sum() + 4 / 5 * ((drop_fold - drop_fold.mean()) ** 2).sum()
    half = stats.t.ppf(0.975, 4) * np.sqrt(variance)
    assert plan.unit == "speaker x fold" and plan.clusters == 5
    assert intervals["wa"] == pytest.approx([acc.mean() - half, acc.mean() + half])


@pytest.mark.parametrize("folds", [None, np.arange(500) % 5])
def test_one_speaker_gets_no_interval_and_a_reason(folds):
    y_true, y_pred, speakers = _speakers_with_accuracies([0.7], per_speaker=500)
    counts, fold_of_job = _counts(y_true, y_pred, speakers, folds=folds)
    intervals, plan = cluster_interval(counts, fold_of_job)
    assert intervals == {"ua": None, "wa": None, "macro_f1": None}
    assert plan.reason and "fewer than 5" in plan.reason and "1 speaker" in plan.reason


def test_four_folds_are_too_few_clusters():
    y_true, y_pred, speakers = _speakers_with_accuracies([0.6, 0.7, 0.8, 0.9])
    counts, _ = _counts(y_true, y_pred, speakers, folds=np.repeat(np.arange(4), 100))
    intervals, plan = cluster_interval(counts, np.arange(4))
    assert intervals["ua"] is None and plan.reason.startswith("4 folds")


def test_unknown_speakers_are_labelled_utterance_level():
    y_true, y_pred, _ = _speakers_with_accuracies([0.5, 0.9])
    counts, folds = _counts(y_true, y_pred, [str(i) for i in range(len(y_true))])
    intervals, plan = cluster_interval(counts, folds, speakers_known=False)
    assert plan.unit == "utterance" and plan.clusters == 200 and intervals["wa"] is not None


def test_intervals_are_clipped_to_the_unit_range():
    # Near-perfect speakers: the t half-width overshoots 1; the interval stops there.
    y_true, y_pred, speakers = _speakers_with_accuracies([1.0, 1.0, 0.7, 1.0, 1.0, 0.98])
    intervals, _ = cluster_interval(*_counts(y_true, y_pred, speakers))
    assert intervals["wa"][1] == 1.0 and intervals["wa"][0] < 0.95
    assert clip([-0.02, 0.4]) == [0.0, 0.4] and clip(None) is None


def test_speaker_level_is_wider_than_treating_utterances_as_independent():
    accuracies = [0.3, 0.9, 0.35, 0.95, 0.4, 0.85, 0.5, 0.8]
    y_true, y_pred, speakers = _speakers_with_accuracies(accuracies)
    lo, hi = cluster_interval(*_counts(y_true, y_pred, speakers))[0]["wa"]
    lo_u, hi_u = cluster_interval(*_counts(y_true, y_pred, [str(i) for i in range(len(y_true))]), False)[0]["wa"]
    assert (hi - lo) > 3 * (hi_u - lo_u)
