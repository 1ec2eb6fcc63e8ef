"""Dimensional results (``--task dimensional``) in ``serbench plot``, the site, ``fuse`` and the
groups section, on hand-built runs: every number is recomputed here with audmetric, scipy or by
hand from the predictions the run was built from, never read back from serbench's own output."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from serbench.api.errors import SerbenchError
from serbench.api.work import Job
from serbench.report import dimension_groups
from serbench.report.dimension_results import table_metrics
from serbench.report.results import comparability, finish, load_result, write_job
from serbench.report.score import score_file

audmetric = pytest.importorskip("audmetric")
pytest.importorskip("matplotlib")
DIMS = ["arousal", "valence"]
FOLDS = 5


def hand_predictions(seed: int = 0, female_noise: float = 0.10, male_noise: float = 0.25) -> pd.DataFrame:
    """Five folds, each testing one female and one male speaker of 20 utterances; the model is
    closer to the truth for the female speakers (less noise), so their CCC is higher."""
    rng = np.random.default_rng(seed)
    rows = []
    for fold in range(1, FOLDS + 1):
        for sex, noise in (("F", female_noise), ("M", male_noise)):
            speaker = f"{fold}{sex}"
            for u in range(20):
                row = {"fold": str(fold), "seed": 0, "utterance_id": f"{speaker}_{u:02d}", "speaker": speaker,
                       "gender": sex, "label": "neutral"}
                for d in DIMS:
                    truth = rng.uniform(0, 1)
                    row[f"pred_{d}"] = round(float(0.8 * truth + 0.1 + rng.normal(0, noise)), 6)
                    row[f"true_{d}"] = round(float(truth), 6)
                rows.append(row)
    return pd.DataFrame(rows)


def build_run(run_dir: Path, frame: pd.DataFrame, threshold: float | None = None, dims: list[str] = DIMS):
    """A finished dimensional run made from ``frame``: job files, then serbench's finish."""
    run_dir.mkdir(parents=True)
    jobs = []
    for (fold, seed), part in frame.groupby(["fold", "seed"], sort=False):
        part = part.reset_index(drop=True)
        record = {"fold": fold, "seed": int(seed), "n_train": 40, "n_dev": len(part), "n_test": len(part),
                  "metrics": table_metrics(part, dims), "best_epoch": 2, "dev_history": [0.1, 0.3, 0.2],
                  "train_s": 0.0}
        write_job(run_dir, record, part, part)
        jobs.append(Job(fold, int(seed)))
    config = {"upstream": "fbank", "downstream": "superb", "pooling": "mean", "loss": "mse", "protocol": "hand",
              "seeds": [0], "overrides": {}, "recipe": {"name": "shared"}, "params": {}}
    key = comparability("hand", "digest0", ["neutral"], "test", "serbench.dimensional/1",
                        task="dimensional: " + ", ".join(dims))
    report = {} if threshold is None else {"fairness_threshold": threshold}
    return finish(run_dir, jobs, ["neutral"], "ccc_mean", True, report, dims, config=config,
                  plugins={"superb": "1", "fbank": "1", "mean": "1", "mse": "1", "hand": "1"},
                  comparability=key, environment={}, timing={"total_s": 0.0})


def fold_ccc(frame: pd.DataFrame, d: str) -> list[float]:
    return [audmetric.concordance_cc(g[f"true_{d}"], g[f"pred_{d}"]) for _, g in frame.groupby("fold")]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    frame = hand_predictions()
    return build_run(tmp_path_factory.mktemp("dim") / "run", frame), frame


def test_per_sex_ccc_is_audmetrics_on_each_sex_and_the_difference_interval_is_t_over_folds(run):
    result, frame = run
    gender = result.data["groups"]["gender"]
    assert gender["design"]["unit"] == "fold"
    per_fold_difference = []
    for d in DIMS:
        female, male = (fold_ccc(frame[frame["gender"] == g], d) for g in ("F", "M"))
        assert gender["groups"]["F"][f"ccc_{d}"]["mean"] == pytest.approx(np.mean(female), abs=1e-9)
        assert gender["groups"]["M"][f"ccc_{d}"]["mean"] == pytest.approx(np.mean(male), abs=1e-9)
        differences = np.array(female) - np.array(male)
        per_fold_difference.append(differences)
        low, high = scipy_stats.t.interval(0.95, FOLDS - 1, differences.mean(), scipy_stats.sem(differences))
        entry = gender["difference"][f"ccc_{d}"]
        assert entry["mean"] == pytest.approx(differences.mean(), abs=1e-9)
        assert entry["ci95"] == pytest.approx([low, high], abs=1e-9)  # delete-one-fold jackknife = t over folds
        female_low, female_high = scipy_stats.t.interval(0.95, FOLDS - 1, np.mean(female), scipy_stats.sem(female))
        assert gender["groups"]["F"][f"ccc_{d}"]["ci95"] == pytest.approx([female_low, female_high], abs=1e-9)
    mean_difference = np.mean(per_fold_difference, axis=0)
    assert gender["difference"]["ccc_mean"]["mean"] == pytest.approx(mean_difference.mean(), abs=1e-9)
    assert gender["difference"]["ccc_mean"]["mean"] > 0  # the female speakers were predicted with less noise


def test_fairness_flag_is_audeerings_ccc_rule_per_dimension(run):
    """|CCC(sex) - CCC(all)| per dimension against 0.075, with the gaps computed by audmetric."""
    result, frame = run
    fair = result.data["groups"]["gender"]["fairness"]
    gaps = {}
    for d in DIMS:
        whole = np.mean(fold_ccc(frame, d))
        for g in ("F", "M"):
            gaps[(f"ccc_{d}", g)] = np.mean(fold_ccc(frame[frame["gender"] == g], d)) - whole
    found = {(c["metric"], c["group"]): c["difference_to_all"] for c in fair["checks"]}
    assert found == pytest.approx(gaps, abs=1e-9)
    assert fair["threshold"] == 0.075
    assert fair["passed"] is all(abs(v) <= 0.075 for v in gaps.values())
    widest = max(abs(v) for v in gaps.values())
    relaxed = dimension_groups.fairness(result.data["groups"]["gender"]["groups"], result.summary, DIMS, widest + 1e-6)
    strict = dimension_groups.fairness(result.data["groups"]["gender"]["groups"], result.summary, DIMS, widest - 1e-6)
    assert relaxed["passed"] is True and strict["passed"] is False


def test_per_speaker_ccc_is_audmetrics_on_the_speakers_utterances(run):
    result, frame = run
    speakers = result.data["groups"]["speaker"]["speakers"]
    assert sorted(speakers) == sorted(frame["speaker"].unique())
    for name, part in frame.groupby("speaker"):
        for d in DIMS:
            assert speakers[name][f"ccc_{d}"]["mean"] == pytest.approx(
                audmetric.concordance_cc(part[f"true_{d}"], part[f"pred_{d}"]), abs=1e-9)
        assert speakers[name]["gender"] == name[-1]


def test_speaker_interval_is_a_jackknife_over_the_speakers_utterances(run):
    result, frame = run
    part = frame[frame["speaker"] == "3F"]
    d = "valence"
    replicates = np.array([audmetric.concordance_cc(rest[f"true_{d}"], rest[f"pred_{d}"])
                           for u in part["utterance_id"] for rest in [part[part["utterance_id"] != u]]])
    g = len(replicates)
    se = np.sqrt((g - 1) / g * ((replicates - replicates.mean()) ** 2).sum())
    centre = audmetric.concordance_cc(part[f"true_{d}"], part[f"pred_{d}"])
    t = scipy_stats.t.ppf(0.975, g - 1)
    assert result.data["groups"]["speaker"]["speakers"]["3F"][f"ccc_{d}"]["ci95"] == pytest.approx(
        [centre - t * se, min(1.0, centre + t * se)], abs=1e-9)


def test_score_reproduces_the_groups_of_the_runs_own_predictions(run, tmp_path):
    result, _ = run
    scored = score_file(result.run_dir / "predictions.csv")
    assert scored["groups"] == json.loads(json.dumps(result.data["groups"]))
    loose = score_file(result.run_dir / "predictions.csv", fairness_threshold=0.9)
    assert loose["groups"]["gender"]["fairness"]["threshold"] == 0.9 and loose["groups"]["gender"]["fairness"]["passed"]


def test_a_run_option_threshold_is_recorded(tmp_path):
    result = build_run(tmp_path / "run", hand_predictions(), threshold=0.5)
    assert result.data["groups"]["gender"]["fairness"]["threshold"] == 0.5


def test_plot_draws_the_dimensional_figures_with_audmetrics_numbers(run, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from serbench.report import dimension_plots
    from serbench.report.plots import plot_run

    result, frame = run
    written = plot_run(result.run_dir, ("svg",), into=tmp_path)
    assert sorted(p.name for p in written) == ["curves.svg", "forest.svg", "per_fold.svg", "scatter.svg"]
    figure = dimension_plots.scatter(plt, result, frame)
    for ax, d in zip(figure.axes, DIMS):
        points = ax.collections[0].get_offsets()
        assert np.allclose(points[:, 0], frame[f"true_{d}"]) and np.allclose(points[:, 1], frame[f"pred_{d}"])
        expected = audmetric.concordance_cc(frame[f"true_{d}"], frame[f"pred_{d}"])
        assert f"CCC {expected:.3f}" in ax.get_title()
    plt.close(figure)
    figure = dimension_plots.forest(plt, result, [])
    ax = figure.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    row = labels.index("ccc_arousal")
    per_fold = fold_ccc(frame, "arousal")
    low, high = scipy_stats.t.interval(0.95, FOLDS - 1, np.mean(per_fold), scipy_stats.sem(per_fold))
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) == 2 and
             np.allclose(line.get_ydata(), row - 0.12)]
    assert np.allclose(lines[0].get_xdata(), [max(low, -1), min(high, 1)])
    plt.close(figure)


def test_the_site_shows_dimensional_runs_in_their_own_columns(run, tmp_path):
    from serbench.report.site import build
    from serbench.run.registry import registry

    result, frame = run
    index = build([load_result(result.run_dir)], tmp_path / "site", registry())
    text = html.unescape(re.sub(r"<[^>]+>", " ", index.read_text()))
    for header in ("ccc_mean", "ccc_arousal", "pearson_valence", "mae_arousal", "CCC F - M (fairness)"):
        assert header in text
    per_fold = fold_ccc(frame, "arousal")
    low, high = scipy_stats.t.interval(0.95, FOLDS - 1, np.mean(per_fold), scipy_stats.sem(per_fold))
    assert f"{np.mean(per_fold):.3f} ± {(high - low) / 2:.3f}" in text
    page = (tmp_path / "site" / "runs").glob("*/index.html")
    run_page = next(page).read_text()
    assert "scatter.svg" in run_page and "forest.svg" in run_page
    assert "UA" not in re.sub(r"<[^>]+>", " ", run_page).split("Configuration")[0]


def _other_system(frame: pd.DataFrame, seed: int, noise: float) -> pd.DataFrame:
    """The same utterances and references, another system's predictions."""
    rng = np.random.default_rng(seed)
    other = frame.copy()
    for d in DIMS:
        other[f"pred_{d}"] = (0.6 * other[f"true_{d}"] + 0.2 + rng.normal(0, noise, len(other))).round(6)
    return other


def test_fuse_combines_dimensional_runs_with_weights_fitted_on_dev_ccc(run, tmp_path):
    """Two systems on the same references: per job and dimension the fused prediction is
    w * A + (1 - w) * B with w fitted on dev CCC; a brute-force grid over w, scored with
    audmetric, finds no better dev CCC, and the fused test CCC is audmetric's on w * A + (1 - w) * B."""
    from serbench.report.fusion import fuse

    result, frame = run
    other = build_run(tmp_path / "other", _other_system(frame, 7, 0.3))
    fused = fuse([result.run_dir, other.run_dir], tmp_path / "fused")
    assert fused.data["task"] == "dimensional" and fused.data["dimensions"] == DIMS
    b = _other_system(frame, 7, 0.3)
    grid = np.linspace(0, 1, 201)
    recorded = json.loads((tmp_path / "fused" / "config.json").read_text())["weights"]
    for record in fused.data["folds"]:
        weights = recorded[f"fold-{record['fold']}_seed-{record['seed']}"]  # the one job key, as categorical fusion
        rows_a, rows_b = frame[frame["fold"] == record["fold"]], b[b["fold"] == record["fold"]]
        for d in DIMS:
            w = weights[d]
            assert len(w) == 2 and min(w) >= 0 and sum(w) == pytest.approx(1.0, abs=1e-6)
            truth = rows_a[f"true_{d}"].to_numpy()
            a_pred, b_pred = rows_a[f"pred_{d}"].to_numpy(), rows_b[f"pred_{d}"].to_numpy()
            best_on_grid = max(audmetric.concordance_cc(truth, g * a_pred + (1 - g) * b_pred) for g in grid)
            fitted = audmetric.concordance_cc(truth, w[0] * a_pred + w[1] * b_pred)  # dev = test in these runs
            assert fitted >= best_on_grid - 1e-3
            assert record["metrics"][f"ccc_{d}"] == pytest.approx(
                audmetric.concordance_cc(truth, np.round(w[0] * a_pred + w[1] * b_pred, 6)), abs=1e-6)
    assert "dev CCC" in fused.data["config"]["weighting"]


def test_fuse_refuses_runs_of_another_task_in_one_line(run, tmp_path):
    from serbench.report.fusion import fuse

    result, frame = run
    other = build_run(tmp_path / "other", _other_system(frame, 3, 0.3).drop(columns=["pred_valence", "true_valence"]),
                      dims=["arousal"])
    with pytest.raises(SerbenchError, match=r"not comparable: task") as caught:
        fuse([result.run_dir, other.run_dir], tmp_path / "fused")
    assert "\n" not in str(caught.value) and not (tmp_path / "fused").exists()
