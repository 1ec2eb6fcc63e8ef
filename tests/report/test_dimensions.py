"""Dimensional metrics against a hand computation and a second library (audmetric), and their
intervals against the Student-t interval and a brute-force jackknife."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from serbench.report import dimensions
from serbench.report.dimension_stats import cluster_interval, speaker_moments, summarize_dimensional

audmetric = pytest.importorskip("audmetric")


def test_ccc_by_hand():
    """x = (0, 1, 2), y = (0, 1, 1): means 1 and 2/3, population variances 2/3 and 2/9,
    covariance 1/3, so CCC = (2/3) / (2/3 + 2/9 + 1/9) = 2/3 and r = (1/3) / sqrt(4/27)."""
    assert dimensions.ccc([0, 1, 2], [0, 1, 1]) == pytest.approx(2 / 3)
    assert dimensions.pearson([0, 1, 2], [0, 1, 1]) == pytest.approx((1 / 3) / np.sqrt(4 / 27))
    assert dimensions.mae([0, 1, 2], [0, 1, 1]) == pytest.approx(1 / 3)


def test_ccc_population_variances_not_sample():
    """x = (1, 3), y = (2, 2): population var(x) = 1, var(y) = 0, means 2 and 2, cov 0 -> CCC 0;
    x = (1, 3), y = (1, 4): var 1 and 2.25, cov 1.5, means 2 and 2.5 -> 3 / (1 + 2.25 + 0.25)."""
    assert dimensions.ccc([1, 3], [2, 2]) == 0.0
    assert dimensions.ccc([1, 3], [1, 4]) == pytest.approx(3 / 3.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_audmetric_and_scipy(seed):
    rng = np.random.default_rng(seed)
    y = rng.uniform(0, 1, 200)
    x = 0.6 * y + rng.normal(0.1, 0.2, 200)
    assert dimensions.ccc(x, y) == pytest.approx(audmetric.concordance_cc(y, x), abs=1e-12)
    assert dimensions.pearson(x, y) == pytest.approx(scipy_stats.pearsonr(x, y)[0], abs=1e-12)
    assert dimensions.mae(x, y) == pytest.approx(audmetric.mean_absolute_error(y, x), abs=1e-12)
    summed = dimensions.from_moments(dimensions.moments(x[None], y[None]))
    assert summed["ccc"][0] == pytest.approx(audmetric.concordance_cc(y, x), abs=1e-9)
    assert summed["pearson"][0] == pytest.approx(audmetric.pearson_cc(y, x), abs=1e-9)


def test_constant_prediction_scores_zero_not_nan():
    assert dimensions.ccc([0.5, 0.5, 0.5], [0.1, 0.4, 0.9]) == 0.0
    assert dimensions.pearson([0.5, 0.5, 0.5], [0.1, 0.4, 0.9]) == 0.0


def _predictions(rng, folds: int, speakers_per_fold: int, per_speaker: int) -> pd.DataFrame:
    rows = []
    for f in range(folds):
        for s in range(speakers_per_fold):
            y = rng.uniform(0, 1, per_speaker)
            x = 0.5 * y + rng.normal(0.2 + 0.05 * s, 0.15, per_speaker)
            for a, b in zip(x, y):
                rows.append({"fold": str(f + 1), "seed": 0, "speaker": f"f{f}s{s}", "pred_arousal": a,
                             "true_arousal": b})
    return pd.DataFrame(rows)


def test_fold_cluster_interval_equals_student_t_over_folds():
    """Speakers nested in folds: the fold is the cluster, and the delete-one-fold jackknife of a
    mean over folds is the Student-t interval of the per-fold values (computed here by scipy)."""
    frame = _predictions(np.random.default_rng(3), folds=6, speakers_per_fold=2, per_speaker=30)
    per_fold = [audmetric.concordance_cc(g["true_arousal"], g["pred_arousal"]) for _, g in frame.groupby("fold")]
    records = [{"fold": str(f + 1), "metrics": {"ccc_mean": v, "ccc_arousal": v, "pearson_arousal": 0.0,
                                                "mae_arousal": 0.0}} for f, v in enumerate(per_fold)]
    summary = summarize_dimensional(records, frame, ["arousal"])
    low, high = scipy_stats.t.interval(0.95, len(per_fold) - 1, np.mean(per_fold), scipy_stats.sem(per_fold))
    assert summary["ccc_arousal"]["cluster"]["unit"] == "fold"
    assert summary["ccc_arousal"]["ci95_bootstrap"] == pytest.approx([low, high], abs=1e-9)
    assert summary["ccc_arousal"]["ci95"] == pytest.approx([low, high], abs=1e-9)


def test_speaker_cluster_interval_matches_brute_force_jackknife():
    """One test split: drop each speaker in turn, recompute CCC with audmetric on the rest."""
    frame = _predictions(np.random.default_rng(4), folds=1, speakers_per_fold=8, per_speaker=20)
    sums, speakers, fold_of_job = speaker_moments(frame, ["arousal"])
    intervals, plan = cluster_interval(sums, fold_of_job, ["arousal"])
    replicates = np.array([audmetric.concordance_cc(rest["true_arousal"], rest["pred_arousal"])
                           for s in speakers for rest in [frame[frame["speaker"] != s]]])
    g = len(replicates)
    se = np.sqrt((g - 1) / g * ((replicates - replicates.mean()) ** 2).sum())
    centre = audmetric.concordance_cc(frame["true_arousal"], frame["pred_arousal"])
    t = scipy_stats.t.ppf(0.975, plan.df)
    assert plan.unit == "speaker" and plan.clusters == 8
    assert intervals["ccc_arousal"] == pytest.approx([centre - t * se, centre + t * se], abs=1e-9)


def test_too_few_clusters_give_no_interval_and_say_why():
    frame = _predictions(np.random.default_rng(5), folds=1, speakers_per_fold=3, per_speaker=10)
    sums, _, fold_of_job = speaker_moments(frame, ["arousal"])
    intervals, plan = cluster_interval(sums, fold_of_job, ["arousal"])
    assert intervals["ccc_arousal"] is None and "fewer than" in plan.reason


def test_paired_permutation_on_dimensional_sums_matches_brute_force():
    """The speaker-block permutation of serbench.report.compare on per-speaker sums equals swapping
    the predictions of each subset of speakers by hand and recomputing CCC with audmetric."""
    import itertools

    from serbench.report.compare import permutation_p
    from serbench.report.results import SpeakerCounts

    rng = np.random.default_rng(7)
    a = _predictions(rng, folds=3, speakers_per_fold=2, per_speaker=12)
    b = a.copy()
    b["pred_arousal"] = a["true_arousal"] * 0.3 + rng.normal(0.3, 0.2, len(a))

    def table(frame):
        sums, speakers, fold_of_job = speaker_moments(frame, ["arousal"])
        return SpeakerCounts(sums, speakers, [(str(f + 1), 0) for f in range(3)], fold_of_job)

    from functools import partial

    from serbench.report.dimension_stats import table_statistic

    test = permutation_p(table(a), table(b), statistic=partial(table_statistic, dimensions=["arousal"]),
                         metrics=["ccc_arousal"])

    def mean_ccc(frame):
        return np.mean([audmetric.concordance_cc(g["true_arousal"], g["pred_arousal"]) for _, g in frame.groupby("fold")])

    observed = mean_ccc(a) - mean_ccc(b)
    speakers = sorted(a["speaker"].unique())
    reached = 0
    for swap in itertools.product([0, 1], repeat=len(speakers)):
        moved = a["speaker"].isin([s for s, w in zip(speakers, swap) if w]).to_numpy()
        sa, sb = a.copy(), b.copy()
        sa.loc[moved, "pred_arousal"], sb.loc[moved, "pred_arousal"] = b.loc[moved, "pred_arousal"], a.loc[moved, "pred_arousal"]
        reached += abs(mean_ccc(sa) - mean_ccc(sb)) >= abs(observed) - 1e-12
    assert test["observed"]["ccc_arousal"] == pytest.approx(observed, abs=1e-9)
    assert test["p"]["ccc_arousal"] == pytest.approx(reached / 2 ** len(speakers))


def test_ccc_and_mse_losses_against_audmetric_and_numpy():
    import torch

    from serbench.run.registry import registry

    rng = np.random.default_rng(11)
    y = rng.uniform(0, 1, (50, 2))
    x = 0.7 * y + rng.normal(0.05, 0.1, (50, 2))
    outputs, batch = {"values": torch.tensor(x)}, {"targets": torch.tensor(y)}
    ccc_loss = registry().get("loss", "ccc").build(["a", "b"], [25, 25])
    mse_loss = registry().get("loss", "mse").build(["a", "b"], [25, 25])
    expected = 1 - np.mean([audmetric.concordance_cc(y[:, k], x[:, k]) for k in range(2)])
    assert float(ccc_loss(outputs, batch)) == pytest.approx(expected, abs=1e-6)
    assert float(mse_loss(outputs, batch)) == pytest.approx(float(((x - y) ** 2).mean()), abs=1e-6)  # float32
    with pytest.raises(Exception, match="--task dimensional"):
        ccc_loss({"logits": torch.zeros(2, 2)}, {"labels": torch.zeros(2)})


def test_values_model_reads_named_outputs_and_centres_a_column_head():
    """A method's own regressors are read by name in the task's order; a head with one column
    per dimension is centred on a training batch and mapped to the training mean and spread
    (checked by hand: an untrained head then predicts the training mean on that batch)."""
    import torch

    from serbench.run.dimensional_task import ValuesModel

    class Named(torch.nn.Module):
        def forward(self, batch):
            return {"logits": torch.zeros(2, 4), "valence": torch.tensor([0.1, 0.2]), "arousal": torch.tensor([0.7, 0.8])}

    values = ValuesModel(Named(), ("arousal", "valence"), columns=False)({})["values"]
    assert values.flatten().tolist() == pytest.approx([0.7, 0.1, 0.8, 0.2])

    class Columns(torch.nn.Module):
        def forward(self, batch):
            return {"logits": batch["x"]}

    train = np.array([[0.2, 0.4], [0.6, 0.8]])  # means 0.4, 0.6; population std 0.2, 0.2
    model = ValuesModel(Columns(), ("arousal", "valence"), columns=True, train=train)
    batch = {"x": torch.tensor([[10.0, -5.0], [12.0, -3.0]])}
    model.calibrate(batch)
    out = model(batch)["values"]
    assert out.mean(0).tolist() == pytest.approx([0.4, 0.6])
    assert out[1].tolist() == pytest.approx([0.4 + 1.0 * 0.2, 0.6 + 1.0 * 0.2])  # logit 1 above the batch mean
