"""serbench compare: the speaker-block paired permutation test against a slow direct
implementation (scikit-learn metrics, explicit swaps), uniform p-values under a null, power
against a planted difference, Holm's correction, and the command on two synthetic runs."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from serbench.report.compare import holm, permutation_p, swap_sets
from serbench.report.results import speaker_table

CLASSES = ["ang", "hap", "neu", "sad"]


def _systems(rng, speakers=6, per_speaker=30, folds=3, seeds=(0,), skill=(0.6, 0.6), speaker_sd=0.15):
    """Two systems' predictions on the same utterances; each speaker has its own difficulty and
    each system its own speaker-specific accuracy (a system-by-speaker effect)."""
    rows = []
    for s in range(speakers):
        fold = str(s % folds + 1)
        labels = rng.integers(0, len(CLASSES), per_speaker)
        base = rng.normal(0, speaker_sd)
        for seed in seeds:
            for system, p in zip("ab", skill):
                accuracy = np.clip(p + base + rng.normal(0, speaker_sd / 2), 0.05, 0.95)
                correct = rng.random(per_speaker) < accuracy
                wrong = (labels + rng.integers(1, len(CLASSES), per_speaker)) % len(CLASSES)
                predicted = np.where(correct, labels, wrong)
                for u in range(per_speaker):
                    rows.append({"system": system, "fold": fold, "seed": seed, "utterance_id": f"s{s}_u{u}",
                                 "speaker": f"spk{s}", "label": CLASSES[labels[u]], "prediction": CLASSES[predicted[u]]})
    frame = pd.DataFrame(rows).sort_values(["fold", "seed", "utterance_id"], kind="stable")
    return frame[frame.system == "a"].drop(columns="system"), frame[frame.system == "b"].drop(columns="system")


def _fold_mean(frame, metric):
    per_job = frame.groupby(["fold", "seed"]).apply(lambda g: metric(g["label"], g["prediction"]), include_groups=False)
    return per_job.groupby(level="fold").mean().mean()


METRICS = {"ua": balanced_accuracy_score, "wa": lambda t, p: float(np.mean(t.to_numpy() == p.to_numpy())),
           "macro_f1": lambda t, p: f1_score(t, p, average="macro")}


def _slow_p(a, b, metric):
    """Every subset of speakers: swap A's and B's predictions for those speakers, recompute."""
    speakers = sorted(a["speaker"].unique())
    observed = _fold_mean(a, metric) - _fold_mean(b, metric)
    extreme = total = 0
    for flags in itertools.product([0, 1], repeat=len(speakers)):
        swapped = {s for s, f in zip(speakers, flags) if f}
        mask = a["speaker"].isin(swapped).to_numpy()
        a2, b2 = a.copy(), b.copy()
        a2.loc[mask, "prediction"], b2.loc[mask, "prediction"] = b["prediction"].to_numpy()[mask], a["prediction"].to_numpy()[mask]
        total += 1
        extreme += abs(_fold_mean(a2, metric) - _fold_mean(b2, metric)) >= abs(observed) - 1e-12
    return extreme / total, observed


def test_the_permutation_test_equals_a_slow_direct_implementation():
    a, b = _systems(np.random.default_rng(0), speakers=6, seeds=(0, 1), skill=(0.62, 0.5))
    fast = permutation_p(speaker_table(a, CLASSES), speaker_table(b, CLASSES))
    assert fast["exact"] and fast["swaps"] == 64 and fast["p_floor"] == pytest.approx(2 / 64)
    for name, metric in METRICS.items():
        p, observed = _slow_p(a, b, metric)
        assert fast["observed"][name] == pytest.approx(observed, abs=1e-12)
        assert fast["p"][name] == pytest.approx(p, abs=1e-12), name


def test_p_values_are_uniform_under_the_null():
    """Systems exchangeable within each speaker (the same skill, a speaker-level effect): at
    alpha = 0.05 and 0.2 the test rejects at its level."""
    rng = np.random.default_rng(1)
    ps = []
    for _ in range(300):
        a, b = _systems(rng, speakers=10, per_speaker=40, folds=5, skill=(0.55, 0.55))
        ps.append(permutation_p(speaker_table(a, CLASSES), speaker_table(b, CLASSES))["p"]["ua"])
    ps = np.array(ps)
    assert 0.02 <= (ps <= 0.05).mean() <= 0.09
    assert 0.14 <= (ps <= 0.2).mean() <= 0.27


def test_a_planted_difference_is_detected():
    """10 points of UA between two systems, 12 speakers x 100 utterances with their own
    difficulty and a system-by-speaker effect: found at alpha = 0.05 in at least 80% of 40
    corpora (about 5 standard errors of the difference)."""
    rng = np.random.default_rng(2)
    ps = [permutation_p(*(speaker_table(f, CLASSES) for f in _systems(rng, speakers=12, per_speaker=100, folds=4,
                                                                      skill=(0.60, 0.50), speaker_sd=0.05)))["p"]["ua"]
          for _ in range(40)]
    assert np.mean(np.array(ps) <= 0.05) >= 0.8


def test_the_interval_excludes_zero_exactly_when_p_is_below_005():
    """The interval inverts the test: over null and planted-difference corpora (exact and
    random swaps), p >= 0.05 if and only if the interval holds 0, for every metric."""
    rng = np.random.default_rng(4)
    agree = total = rejected = 0
    for k in range(120):
        skill = (0.55, 0.55) if k % 2 else (0.60, 0.52)
        speakers = 10 if k % 3 else 16  # 16 speakers: 10,000 random swap sets
        a, b = _systems(rng, speakers=speakers, per_speaker=30, folds=5, skill=skill)
        test = permutation_p(speaker_table(a, CLASSES), speaker_table(b, CLASSES), resamples=2000, seed=k)
        for m in ("ua", "wa", "macro_f1"):
            lo, hi = test["ci95"][m]
            assert lo <= test["observed"][m] <= hi
            agree += (test["p"][m] >= 0.05) == (lo <= 0.0 <= hi)
            rejected += test["p"][m] < 0.05
            total += 1
    assert agree == total and 0 < rejected < total


def test_the_interval_covers_a_planted_difference():
    """A real difference (60% vs 52% skill): the inverted interval holds the difference in
    expected UA between the systems in at least 93% of 200 corpora."""
    rng = np.random.default_rng(5)
    truth = np.mean([_fold_mean(a, METRICS["ua"]) - _fold_mean(b, METRICS["ua"])
                     for a, b in (_systems(rng, speakers=10, per_speaker=30, folds=5, skill=(0.60, 0.52))
                                  for _ in range(300))])
    covered = 0
    for k in range(200):
        a, b = _systems(rng, speakers=10, per_speaker=30, folds=5, skill=(0.60, 0.52))
        lo, hi = permutation_p(speaker_table(a, CLASSES), speaker_table(b, CLASSES), seed=k)["ci95"]["ua"]
        covered += lo <= truth <= hi
    assert covered / 200 >= 0.93


def test_random_swaps_beyond_exact_enumeration():
    swaps, exact = swap_sets(20, 500, seed=0)
    assert not exact and swaps.shape == (501, 20) and not swaps[0].any()  # the observed set first
    swaps, exact = swap_sets(3, 500, seed=0)
    assert exact and sorted(map(tuple, swaps.astype(int))) == sorted(itertools.product([0, 1], repeat=3))


def test_holm_against_hand_computed_values():
    # sorted p: 0.01 (x3 = 0.03), 0.02 (x2 = 0.04), 0.04 (x1 = 0.04): monotone step-down
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])


@pytest.mark.e2e
def test_compare_command_on_two_synthetic_runs(tmp_path):
    from conftest import run_cli

    base = ["run", "--upstream", "fbank", "--protocol", "synthetic", "--quiet", "-o", "train.max_epochs=3"]
    for pooling in ("mean", "std"):
        done = run_cli(*base, "--downstream", "superb", "--pooling", pooling, "-o", "protocol.per_class=4",
                       "--out", str(tmp_path / "runs"))
        assert done.returncode == 0, done.stderr
    runs = sorted(str(p) for p in (tmp_path / "runs").iterdir())
    out = run_cli("compare", *runs, "--json", str(tmp_path / "compare.json"))
    assert out.returncode == 0, out.stderr
    assert "p (permutation)" in out.stdout and "floor" in out.stdout
    data = json.loads((tmp_path / "compare.json").read_text())
    row = data["comparisons"][0]
    for metric in ("ua", "wa", "macro_f1"):
        entry = row["metrics"][metric]
        assert entry["ci95"][0] <= entry["difference"] <= entry["ci95"][1]
        assert 0 < entry["p"] <= 1
    a, b = (json.loads((tmp_path / "runs" / r / "result.json").read_text())["summary"]["ua"]["mean"]
            for r in (row["a_id"], row["b_id"]))
    assert row["metrics"]["ua"]["difference"] == pytest.approx(a - b)  # the table's statistic
    other = run_cli(*base, "--out", str(tmp_path / "other"), "--downstream", "superb", "-o", "protocol.per_class=3")
    assert other.returncode == 0, other.stderr
    (odd,) = list((tmp_path / "other").iterdir())
    refused = run_cli("compare", runs[0], str(odd))
    assert refused.returncode != 0 and "utterance" in refused.stderr and "fold" in refused.stderr
