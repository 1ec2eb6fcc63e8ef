"""Per-gender and per-speaker metrics against scikit-learn on the predictions' subsets; the
female - male interval against independent computations (a Student-t over folds, a
brute-force jackknife) and its simulated coverage; audEERING's fairness rule by hand."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from serbench.api.errors import SerbenchError
from serbench.report import groups
from serbench.report.score import score_file

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ["neutral", "happy", "angry", "sad"]
SKLEARN = {"ua": balanced_accuracy_score, "wa": accuracy_score,
           "macro_f1": lambda y, p: f1_score(y, p, average="macro")}


def predictions(folds: int = 5, seeds: int = 2, pairs: int = 1, utterances: int = 24, seed: int = 0) -> pd.DataFrame:
    """A run's predictions: each fold tests ``pairs`` female and male speakers; the female
    ones are recognised more often, and one utterance has no known gender."""
    rng = np.random.default_rng(seed)
    rows = []
    for fold in range(1, folds + 1):
        for s in range(seeds):
            for p in range(pairs):
                for sex, skill in (("F", 0.7), ("M", 0.5)):
                    speaker = f"{fold:02d}{sex}{p}"
                    for u in range(utterances):
                        label = int(rng.integers(4))
                        pred = label if rng.random() < skill else int(rng.integers(4))
                        rows.append({"fold": str(fold), "seed": s, "utterance_id": f"{speaker}_{u:03d}",
                                     "speaker": speaker, "gender": sex, "label": CLASSES[label],
                                     "prediction": CLASSES[pred]})
    frame = pd.DataFrame(rows)
    frame.loc[3, "gender"] = ""  # unknown: in no gender group
    return frame


def table_value(frame: pd.DataFrame, metric: str) -> float:
    """scikit-learn per (fold, seed) job, the mean over seeds, then over folds."""
    per_fold = [np.mean([SKLEARN[metric](job["label"], job["prediction"]) for _, job in fold.groupby("seed")])
                for _, fold in frame.groupby("fold")]
    return float(np.mean(per_fold))


def overall_of(frame: pd.DataFrame) -> dict:
    return {m: {"mean": table_value(frame, m)} for m in SKLEARN}


def test_per_gender_metrics_are_sklearns_on_each_subset():
    frame = predictions()
    found = groups.by_gender(frame, CLASSES, True, overall_of(frame))
    for sex in groups.GENDERS:
        subset = frame[frame["gender"] == sex]
        entry = found["groups"][sex]
        assert entry["utterances"] == len(subset) and entry["speakers"] == subset["speaker"].nunique()
        for metric in SKLEARN:
            assert entry[metric]["mean"] == pytest.approx(table_value(subset, metric), abs=1e-12)
            low, high = entry[metric]["ci95"]
            assert low < entry[metric]["mean"] < high
        assert found["unknown_gender_utterances"] == 1
    for metric in SKLEARN:
        expected = table_value(frame[frame["gender"] == "F"], metric) - table_value(frame[frame["gender"] == "M"], metric)
        assert found["difference"][metric]["mean"] == pytest.approx(expected, abs=1e-12)


def test_per_speaker_metrics_are_sklearns_on_each_speaker():
    frame = predictions(seeds=1)
    found = groups.by_speaker(frame, CLASSES)
    assert sorted(found["speakers"]) == sorted(frame["speaker"].unique())
    for speaker, part in frame.groupby("speaker"):
        entry = found["speakers"][speaker]
        assert entry["gender"] == speaker[2] and entry["utterances"] == len(part)
        for metric in SKLEARN:
            assert entry[metric]["mean"] == pytest.approx(SKLEARN[metric](part["label"], part["prediction"]), abs=1e-12)
    ua = {s: e["ua"]["mean"] for s, e in found["speakers"].items()}
    assert found["spread"]["ua"]["worst"] == min(ua, key=ua.get)
    assert found["spread"]["ua"]["std"] == pytest.approx(np.std(list(ua.values()), ddof=1))


def test_speaker_interval_is_a_jackknife_over_the_speakers_utterances():
    """One speaker, one job: its accuracy's interval is the delete-one-utterance jackknife,
    computed here from the definition, with t(n - 1)."""
    frame = predictions(folds=1, seeds=1, utterances=30)
    part = frame[frame["speaker"] == "01M0"]
    correct = (part["label"] == part["prediction"]).to_numpy(dtype=float)
    n = len(correct)
    leave_one_out = (correct.sum() - correct) / (n - 1)
    se = np.sqrt((n - 1) / n * ((leave_one_out - leave_one_out.mean()) ** 2).sum())
    half = scipy_stats.t.ppf(0.975, n - 1) * se
    entry = groups.by_speaker(frame, CLASSES)["speakers"]["01M0"]["wa"]
    assert entry["ci95"] == pytest.approx([max(0, correct.mean() - half), min(1, correct.mean() + half)])


def test_difference_over_folds_is_the_t_interval_of_the_per_fold_differences():
    """Speakers nested in folds: the folds are the clusters, and the jackknife of a mean over
    folds is the Student-t interval of the per-fold female - male differences (scipy)."""
    frame = predictions(folds=6, seeds=2)
    found = groups.by_gender(frame, CLASSES, True, overall_of(frame))
    assert found["difference"]["cluster"]["unit"] == "fold"
    for metric in SKLEARN:
        per_fold = [table_value(part[part["gender"] == "F"], metric) - table_value(part[part["gender"] == "M"], metric)
                    for _, part in frame.groupby("fold")]
        expected = scipy_stats.t.interval(0.95, len(per_fold) - 1, loc=np.mean(per_fold), scale=scipy_stats.sem(per_fold))
        assert found["difference"][metric]["ci95"] == pytest.approx(list(expected), abs=1e-12)


def test_single_split_difference_is_a_jackknife_over_speakers_recomputed_by_sklearn():
    """One test split: the speakers are the clusters of the whole, and each replicate drops one
    speaker (of either sex) and recomputes both groups; checked by brute force."""
    frame = predictions(folds=1, seeds=1, pairs=4, utterances=20)
    found = groups.by_gender(frame, CLASSES, True, overall_of(frame))
    plan = found["difference"]["cluster"]
    assert plan["unit"] == "speaker" and plan["clusters"] == 8
    for metric in SKLEARN:
        replicates = []
        for speaker in sorted(frame["speaker"].unique()):
            rest = frame[frame["speaker"] != speaker]
            replicates.append(SKLEARN[metric](*rest[rest["gender"] == "F"][["label", "prediction"]].T.values)
                              - SKLEARN[metric](*rest[rest["gender"] == "M"][["label", "prediction"]].T.values))
        r = np.array(replicates)
        se = np.sqrt((len(r) - 1) / len(r) * ((r - r.mean()) ** 2).sum())
        centre = found["difference"][metric]["mean"]
        half = scipy_stats.t.ppf(0.975, plan["df"]) * se
        assert found["difference"][metric]["ci95"] == pytest.approx([centre - half, centre + half], abs=1e-12)


def test_fairness_flag_is_audeerings_rule_with_a_settable_threshold():
    """Female UA 0.70, male 0.50, the whole 0.60 (hand-made table): each sex is 0.10 from the
    whole, so the rule fails at audEERING's 0.075 and passes at 0.10."""
    overall = {"ua": {"mean": 0.60}}
    by_sex = {"F": {"ua": {"mean": 0.70}}, "M": {"ua": {"mean": 0.50}}}
    failed = groups.fairness(by_sex, overall, groups.FAIRNESS_THRESHOLD)
    assert groups.FAIRNESS_THRESHOLD == 0.075 and failed["passed"] is False
    assert [c["difference_to_all"] for c in failed["checks"]] == pytest.approx([0.10, -0.10])
    assert groups.fairness(by_sex, overall, 0.10)["passed"] is True
    assert groups.fairness({"F": by_sex["F"]}, overall, 0.10)["passed"] is None  # one sex: nothing to compare


def test_per_class_fairness_checks_are_audeerings_by_hand():
    """Eight utterances by hand. angry: F 2 of 2 recalled, M 0 of 2, all 2 of 4 -> recall gaps
    +0.5 / -0.5; F predicts angry twice (both right), M once (wrong), all 2 of 3 -> precision
    gaps +1/3 / -2/3. happy: F recalls 2 of 2 (all: 2 of 2, gap 0); M has no happy utterance (its
    recall skipped) and predicts happy once, wrongly (precision 0 vs all 2/3). sad: only M has sad
    utterances and predictions (recall 1/2, precision 1/2, as all) -> F's sad checks skipped."""
    rows = [("F", "angry", "angry"), ("F", "angry", "angry"), ("F", "happy", "happy"), ("F", "happy", "happy"),
            ("M", "angry", "sad"), ("M", "angry", "happy"), ("M", "sad", "angry"), ("M", "sad", "sad")]
    frame = pd.DataFrame([{"gender": g, "label": y, "prediction": p} for g, y, p in rows])
    found = {"checks": [], "passed": None, "rule": "r"}
    groups.add_per_class_checks(found, frame, frame["gender"], ["angry", "happy", "sad"], 0.175, 0.075)
    gaps = {(c["metric"], c["class"], c["group"]): c["difference_to_all"] for c in found["checks"]}
    assert gaps[("recall_per_class", "angry", "F")] == pytest.approx(0.5)
    assert gaps[("recall_per_class", "angry", "M")] == pytest.approx(-0.5)
    assert gaps[("precision_per_class", "angry", "F")] == pytest.approx(1 - 2 / 3)
    assert gaps[("precision_per_class", "angry", "M")] == pytest.approx(0 - 2 / 3)
    assert gaps[("recall_per_class", "happy", "F")] == pytest.approx(0.0)
    assert gaps[("precision_per_class", "happy", "F")] == pytest.approx(1 - 2 / 3)
    assert gaps[("precision_per_class", "happy", "M")] == pytest.approx(0 - 2 / 3)
    assert gaps[("recall_per_class", "sad", "M")] == pytest.approx(0.0)
    assert gaps[("precision_per_class", "sad", "M")] == pytest.approx(0.0)
    assert sorted(found["per_class"]["skipped"]) == ["precision of sad for F", "recall of happy for M",
                                                     "recall of sad for F"]
    assert len(found["checks"]) == 2 * 2 * 3 - 3
    assert found["passed"] is False
    thresholds = {(c["metric"], c["class"], c["group"]): c["threshold"] for c in found["checks"]}
    assert thresholds[("recall_per_class", "angry", "F")] == 0.175
    assert thresholds[("precision_per_class", "angry", "F")] == 0.075
    relaxed = {"checks": [], "passed": None, "rule": "r"}
    groups.add_per_class_checks(relaxed, frame, frame["gender"], ["angry", "happy", "sad"], 1.0, 1.0)
    assert relaxed["passed"] is True
    assert groups.RECALL_PER_CLASS_THRESHOLD == 0.175 and groups.PRECISION_PER_CLASS_THRESHOLD == 0.075


def test_per_class_fairness_reads_sklearns_per_sex_recall_and_precision():
    from sklearn.metrics import precision_score, recall_score

    frame = predictions()
    result = groups.summarize(frame, CLASSES, True, overall_of(frame))["gender"]
    checks = {(c["metric"], c["class"], c["group"]): c["difference_to_all"] for c in result["fairness"]["checks"]
              if c["metric"].endswith("per_class")}
    all_recall = recall_score(frame["label"], frame["prediction"], labels=CLASSES, average=None)
    all_precision = precision_score(frame["label"], frame["prediction"], labels=CLASSES, average=None)
    for g in ("F", "M"):
        part = frame[frame["gender"] == g]
        recall = recall_score(part["label"], part["prediction"], labels=CLASSES, average=None)
        precision = precision_score(part["label"], part["prediction"], labels=CLASSES, average=None)
        for k, c in enumerate(CLASSES):
            assert checks[("recall_per_class", c, g)] == pytest.approx(recall[k] - all_recall[k])
            assert checks[("precision_per_class", c, g)] == pytest.approx(precision[k] - all_precision[k])


def test_no_gender_column_no_gender_groups_and_unknown_speakers_no_speaker_groups():
    frame = predictions().drop(columns="gender")
    found = groups.summarize(frame, CLASSES, False, overall_of(frame))
    assert found == {"gender": None, "speaker": None}


def test_score_reads_gender_and_refuses_a_bad_one_naming_the_line(tmp_path):
    frame = predictions(seeds=1)
    path = tmp_path / "predictions.csv"
    frame.to_csv(path, index=False)
    scored = score_file(path, fairness_threshold=0.3)
    assert scored["groups"]["gender"]["fairness"]["threshold"] == 0.3
    assert scored["groups"]["gender"]["groups"]["F"]["ua"]["mean"] == pytest.approx(
        table_value(frame[frame["gender"] == "F"], "ua"))
    frame.loc[5, "gender"] = "x"
    frame.to_csv(path, index=False)
    with pytest.raises(SerbenchError, match=r"predictions\.csv:7: gender 'x' is not one of F, M"):
        score_file(path)


spec = importlib.util.spec_from_file_location("group_coverage", ROOT / "benchmarks" / "stats" / "group_coverage.py")
group_coverage = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = group_coverage
spec.loader.exec_module(group_coverage)


@pytest.fixture(scope="module")
def simulated():
    return group_coverage.report(400)


def test_the_readme_group_coverage_table_is_the_scripts_output(simulated):
    _, text = simulated
    readme = (ROOT / "docs" / "protocols-and-statistics.md").read_text()
    block = readme.split("<!-- simulated: group coverage -->\n")[1].split("\n<!-- end simulated: group coverage -->")[0]
    assert block == text, "rerun: python benchmarks/stats/group_coverage.py --replicates 400 --page docs/protocols-and-statistics.md"


@pytest.mark.parametrize("index", range(len(group_coverage.DESIGNS)), ids=[d.name for d in group_coverage.DESIGNS])
def test_the_difference_interval_covers_the_true_difference(simulated, index):
    """>= 92% of 400 runs (a true 95% passes with probability > 0.99), and never wider than
    two separate per-group intervals combined as if independent."""
    rows, _ = simulated
    for metric, got in rows[index]["metrics"].items():
        assert got["joint"] >= 0.92, (metric, got)
        assert got["width"] <= got["separate_width"] + 1e-9, (metric, got)


def test_a_damaged_groups_or_calibration_section_is_named():
    from serbench.report.beyond_table import beyond_problem, fairness_cell, table_rows

    frame = predictions()
    data = {"groups": groups.summarize(frame, CLASSES, True, overall_of(frame))}
    assert beyond_problem(data) == ""
    assert table_rows(data)[2][0] == "UA F - M" and fairness_cell(data).endswith(("pass", "FAIL"))
    data["groups"]["gender"]["fairness"] = "x"
    assert beyond_problem(data) == "groups.gender.fairness is not a mapping with passed, a numeric threshold and checks"
    data["groups"]["gender"]["groups"]["F"]["ua"]["ci95"] = [0.1]
    assert beyond_problem(data) == "groups.gender.groups.F.ua.ci95 is not null or a [low, high] pair of numbers"
    assert beyond_problem({"calibration": {"cluster": {}, "ece": {"mean": "0.1"}}}) == (
        "calibration.ece is not a mapping with a numeric mean")


def test_report_options_are_checked_recorded_and_not_part_of_the_run_id(tmp_path):
    from serbench.run.plan import plan
    from serbench.run.request import RunRequest

    small = ["protocol.per_class=2"]
    base = plan(RunRequest("fbank", "superb", protocol="synthetic", overrides=small))
    tuned = plan(RunRequest("fbank", "superb", protocol="synthetic",
                 overrides=small + ["report.fairness_threshold=0.1", "report.temperature_scaling=true"]))
    per_class = {"fairness_recall_per_class": 0.175, "fairness_precision_per_class": 0.075}  # audEERING's
    assert tuned.config["report"] == {"fairness_threshold": 0.1, "temperature_scaling": True, **per_class}
    assert base.config["report"] == {"fairness_threshold": 0.075, "temperature_scaling": False, **per_class}
    assert tuned.run_id == base.run_id  # rescoring, not retraining
    with pytest.raises(SerbenchError, match=r"report\.fairness_threshold"):
        plan(RunRequest("fbank", "superb", protocol="synthetic", overrides=small + ["report.fairness_threshold=2"]))
    with pytest.raises(SerbenchError, match=r"-o report\.fairness: unknown parameter"):
        plan(RunRequest("fbank", "superb", protocol="synthetic", overrides=small + ["report.fairness=2"]))
    frame = predictions(seeds=1)
    frame.to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(SerbenchError, match=r"--fairness-threshold 1\.5: expected a difference of proportions in \[0, 1\]"):
        score_file(tmp_path / "p.csv", fairness_threshold=1.5)
