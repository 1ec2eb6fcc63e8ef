"""Every metric per group of speakers (gender, speaker), the female - male difference, and a
fairness flag.

**Per gender.** The predictions table carries each utterance's gender when the protocol knows
it (a ``gender`` column, ``F`` / ``M``; empty when unknown, and such rows join no group). A
group's value is the table's statistic restricted to its utterances: each (fold, seed) job's
metric on that job's utterances of the group, the mean over seeds, then over folds, exactly as
the whole's (:func:`serbench.report.stats.fold_statistic` on the group's confusion counts).

**Intervals respect the whole's clustering.** The level resampled is the one
:func:`serbench.report.stats.design` chooses for the whole run (folds when speakers are nested in
folds, speakers for a single test split, both when they are crossed), never one chosen again
for the subset: a group's speakers share their fold's model with the other group's, and that
shared fold effect is what a fold-level interval carries. A group's own interval deletes one of
*its* clusters at a time (the folds or the speakers it has), with ``clusters - 1`` degrees of
freedom (Kish's effective number for speakers, as :mod:`serbench.report.stats`). The **difference**
``female - male`` is one statistic computed on the same replicates: deleting a fold (or a
speaker) recomputes both groups from what is left, so the covariance of two groups tested by
one model is in the interval (two separate intervals would ignore it and be too wide when the
groups move together). Its coverage is simulated in ``benchmarks/stats/group_coverage.py``
(table in the README).

**Per speaker.** One speaker is one cluster, and a single cluster cannot be resampled: a
speaker's interval is the delete-one-*utterance* jackknife within that speaker (an utterance's
predictions under several seeds stay together), i.e. conditional on that speaker and on the
model of the fold that tested it. It says how precisely the speaker's own score is measured,
not how another speaker would fare; it is labelled so.

**Fairness flag.** audEERING's published SER model tests (Derington, Wierstorf, Özkil, Eyben,
Burkhardt & Schuller 2023, *Testing Speech Emotion Recognition Machine Learning Models*,
arXiv:2312.06270; thresholds in https://audeering.github.io/ser-tests/method-tests.html,
"Fairness Sex") fail a model when a sex's score differs from the score on the combined test
set by more than a threshold: 0.075 for the unweighted average recall (UAR, serbench's ``ua``)
and 0.075 for the concordance correlation coefficient of arousal, valence and dominance.
serbench applies that rule to each sex's ``ua`` against the whole's (``-o
report.fairness_threshold=...`` sets it; a dimensional result's CCC per dimension:
:mod:`serbench.report.dimension_groups`). audEERING's categorical tests also compare each
sex's **recall per class** (threshold 0.175) and **precision per class** (0.075) with the
combined test set's, after *Equalized Odds*; serbench checks both too, each class's value over
every (fold, seed) job's test predictions together (pooled, as the ``overall`` block is: one
class's recall per fold rests on a handful of utterances), at ``-o
report.fairness_recall_per_class`` and ``-o report.fairness_precision_per_class``. A class a sex
has no utterance of (recall) or no prediction of (precision) is skipped for that sex and said
so. What serbench
does differently, as its own choices: audEERING first balances each sex to 1000 samples with
similar truth values; serbench scores every test utterance (the group sizes are recorded), and
shows the female - male difference with its interval beside the flag, so a reader can tell a
measured gap from a noisy one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from serbench.report.calibration import interval, jackknife
from serbench.report.metrics import METRICS
from serbench.report.stats import MIN_CLUSTERS, Design, clip, cluster_interval, design, fold_statistic, speaker_counts

GENDERS = ("F", "M")
DIFFERENCE = "F - M"
FAIRNESS_THRESHOLD = 0.075  # audEERING ser-tests, "Fairness Sex": UAR and CCC
FAIRNESS_METRICS = ("ua", "ccc")  # UAR (categorical) and CCC (dimensional), the two audEERING tests by sex
RECALL_PER_CLASS_THRESHOLD = 0.175  # audEERING ser-tests, Fairness Sex, emotion: Recall Per Class Female / Male
PRECISION_PER_CLASS_THRESHOLD = 0.075  # audEERING ser-tests, Fairness Sex, emotion: Precision Per Class Female / Male
SPEAKER_INTERVAL = "delete-one-utterance jackknife within the speaker (conditional on the speaker and its fold's model)"


def gender_column(frame: pd.DataFrame) -> pd.Series | None:
    """``F`` / ``M`` / '' per row, or None when the table has no gender column or no known gender."""
    if "gender" not in frame.columns:
        return None
    genders = frame["gender"].fillna("").astype(str)
    return genders if genders.isin(GENDERS).any() else None


def _indices(frame: pd.DataFrame, classes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    jobs = list(dict.fromkeys(zip(frame["fold"].astype(str), frame["seed"].astype(int))))
    folds = list(dict.fromkeys(f for f, _ in jobs))
    job_of = {job: j for j, job in enumerate(jobs)}
    job_index = np.array([job_of[(str(f), int(s))] for f, s in zip(frame["fold"], frame["seed"])], dtype=np.int64)
    speakers = sorted(set(frame["speaker"].astype(str)))
    speaker_index = frame["speaker"].astype(str).map({s: i for i, s in enumerate(speakers)}).to_numpy()
    index = {c: k for k, c in enumerate(classes)}
    return (job_index, speaker_index, frame["label"].map(index).to_numpy(), frame["prediction"].map(index).to_numpy(),
            np.array([folds.index(f) for f, _ in jobs], dtype=np.int64), speakers)


def _group_design(counts: np.ndarray, fold_of_job: np.ndarray, whole: Design) -> Design:
    """The whole's resampling level, with this group's number of clusters and degrees of freedom."""
    tested = counts.sum(axis=(2, 3)) > 0
    folds = int(((tested.astype(np.float64) @ np.eye(int(fold_of_job.max()) + 1)[fold_of_job]) > 0).any(0).sum())
    speakers = int(tested.any(1).sum())
    size = counts.sum(axis=(1, 2, 3))
    size = size[size > 0]
    effective = float(size.sum() ** 2 / (size ** 2).sum()) if size.size else 0.0
    if whole.unit == "fold":
        clusters, df = folds, folds - 1.0
    elif "x" in whole.unit:
        clusters, df = min(speakers, folds), min(effective, folds) - 1.0
    else:
        clusters, df = speakers, effective - 1.0
    reason = None if clusters >= MIN_CLUSTERS else (
        f"{clusters} {whole.unit.split(' ')[0]}{'s' if clusters != 1 else ''} in this group: fewer than "
        f"{MIN_CLUSTERS} independent clusters, no honest interval")
    return Design(whole.unit, clusters, round(max(df, 1.0), 3), reason)


def by_gender(frame: pd.DataFrame, classes: list[str], speakers_known: bool, overall: dict,
              threshold: float = FAIRNESS_THRESHOLD, per_class: tuple[float, float] | None = None) -> dict | None:
    """Each metric per gender with its interval, the female - male difference with its
    interval (same replicates, see the module docstring), and the fairness flag; None when the
    table knows no gender."""
    genders = gender_column(frame)
    if genders is None:
        return None
    job_index, speaker_index, y_true, y_pred, fold_of_job, speakers = _indices(frame, classes)
    s, j, k = len(speakers), int(job_index.max()) + 1, len(classes)
    counts = {}
    for g in GENDERS:
        mask = (genders == g).to_numpy()
        counts[g] = speaker_counts(job_index[mask], speaker_index[mask], y_true[mask], y_pred[mask], s, j, k)
    out = compare_groups(counts, fold_of_job, speakers_known)
    unknown = int((~genders.isin(GENDERS)).sum())
    if unknown:
        out["unknown_gender_utterances"] = unknown
    out["fairness"] = fairness(out["groups"], overall, threshold)
    if per_class is not None:
        add_per_class_checks(out["fairness"], frame, genders, classes, *per_class)
    return out


def per_class_rates(labels: np.ndarray, predictions: np.ndarray, classes: list[str]) -> dict[str, dict]:
    """Recall and precision of each class over the given rows; None where undefined (no
    utterance of the class: recall; no prediction of it: precision)."""
    out = {}
    for c in classes:
        truth, guess = labels == c, predictions == c
        hits = int((truth & guess).sum())
        out[c] = {"recall": hits / int(truth.sum()) if truth.any() else None,
                  "precision": hits / int(guess.sum()) if guess.any() else None}
    return out


def add_per_class_checks(found: dict, frame: pd.DataFrame, genders: pd.Series, classes: list[str],
                         recall_threshold: float, precision_threshold: float) -> None:
    """audEERING's Recall / Precision Per Class (Female, Male) checks, appended to ``found``
    (the :func:`fairness` record), pooled over every job's test predictions; ``passed`` is
    recomputed over every check."""
    labels, predictions = frame["label"].astype(str).to_numpy(), frame["prediction"].astype(str).to_numpy()
    whole = per_class_rates(labels, predictions, classes)
    skipped = []
    present = [g for g in GENDERS if (genders == g).any()]
    for g in present if len(present) == len(GENDERS) else ():
        mask = (genders == g).to_numpy()
        rates = per_class_rates(labels[mask], predictions[mask], classes)
        for kind, limit in (("recall", recall_threshold), ("precision", precision_threshold)):
            for c in classes:
                if rates[c][kind] is None or whole[c][kind] is None:
                    skipped.append(f"{kind} of {c} for {g}")
                    continue
                gap = rates[c][kind] - whole[c][kind]
                found["checks"].append({"metric": f"{kind}_per_class", "class": c, "group": g,
                                        "difference_to_all": gap, "threshold": limit, "passed": abs(gap) <= limit})
    found["per_class"] = {"over": "every (fold, seed) job's test predictions together",
                          "recall_threshold": recall_threshold, "precision_threshold": precision_threshold,
                          "skipped": skipped}
    found["rule"] += ("; |recall or precision of a class (sex) - that of all| <= its threshold (audEERING ser-tests, "
                      "Fairness Sex: Recall Per Class, Precision Per Class)")
    found["passed"] = None if not found["checks"] else all(c["passed"] for c in found["checks"])


def compare_groups(counts: dict[str, np.ndarray], fold_of_job: np.ndarray, speakers_known: bool = True) -> dict:
    """From each group's ``[S, J, K, K]`` confusion counts (the same speakers and jobs axes;
    a speaker's rows of another group are zero): each group's metrics with intervals, and
    ``F - M`` with its interval when both are present, clustered as the whole
    (``sum(counts.values())``) is."""
    whole_counts = sum(counts.values())
    whole = design(whole_counts, fold_of_job, speakers_known)
    s, folds = whole_counts.shape[0], int(np.max(fold_of_job)) + 1
    present = [g for g in counts if counts[g].sum() > 0]
    out: dict = {"column": "gender", "design": whole.record(), "groups": {}}
    for g in present:
        plan = _group_design(counts[g], fold_of_job, whole)

        def statistic(weights=None, fold_weights=None, c=counts[g]):
            return fold_statistic(c, fold_of_job, weights, fold_weights)

        kept = counts[g].sum(axis=(1, 2, 3)) > 0
        kept_folds = (counts[g].sum(axis=(0, 2, 3)) @ np.eye(folds)[fold_of_job]) > 0
        estimate = {m: float(v[0]) for m, v in statistic().items()}
        variance = (jackknife(statistic, plan, s, folds, kept, kept_folds) if not plan.reason
                    else dict.fromkeys(METRICS, np.nan))
        out["groups"][g] = {
            "utterances": int(counts[g].sum()), "speakers": int(kept.sum()), "cluster": plan.record(),
            **{m: {"mean": estimate[m], "ci95": interval(estimate[m], variance[m], plan, 0.0, 1.0)} for m in METRICS}}
    if all(g in present for g in GENDERS):
        def difference(weights=None, fold_weights=None):
            a = fold_statistic(counts["F"], fold_of_job, weights, fold_weights)
            b = fold_statistic(counts["M"], fold_of_job, weights, fold_weights)
            return {m: a[m] - b[m] for m in METRICS}

        kept = whole_counts.sum(axis=(1, 2, 3)) > 0
        estimate = {m: float(v[0]) for m, v in difference().items()}
        variance = jackknife(difference, whole, s, folds, kept) if not whole.reason else dict.fromkeys(METRICS, np.nan)
        out["difference"] = {"groups": DIFFERENCE, "cluster": whole.record(),
                             **{m: {"mean": estimate[m], "ci95": interval(estimate[m], variance[m], whole, -1.0, 1.0)}
                                for m in METRICS}}
    return out


def fairness(groups: dict, overall: dict, threshold: float) -> dict:
    """audEERING's "Fairness Sex" rule: for each tested metric the result has, each sex's value
    within ``threshold`` of the whole's; ``passed`` None when fewer than two sexes are present."""
    checks = []
    for metric in FAIRNESS_METRICS:
        if metric not in overall or not all(metric in groups.get(g, {}) for g in GENDERS):
            continue
        for g in GENDERS:
            gap = groups[g][metric]["mean"] - overall[metric]["mean"]
            checks.append({"metric": metric, "group": g, "difference_to_all": gap, "threshold": threshold,
                           "passed": abs(gap) <= threshold})
    passed = None if not checks else all(c["passed"] for c in checks)
    return {"rule": "|metric(sex) - metric(all test utterances)| <= threshold, for each sex (audEERING ser-tests, "
                    "Fairness Sex; UAR and CCC)",
            "threshold": threshold, "checks": checks, "passed": passed}


def by_speaker(frame: pd.DataFrame, classes: list[str]) -> dict:
    """Each metric per speaker (the table's statistic over the speaker's utterances) with its
    within-speaker interval (:data:`SPEAKER_INTERVAL`), and the spread of the main metrics
    over speakers."""
    as_utterances = frame.assign(speaker=frame["utterance_id"].astype(str))
    job_index, utterance_index, y_true, y_pred, fold_of_job, utterances = _indices(as_utterances, classes)
    counts = speaker_counts(job_index, utterance_index, y_true, y_pred, len(utterances), int(job_index.max()) + 1,
                            len(classes))  # [U, J, K, K]: utterances are the clusters within a speaker
    rows_of, gender_of = speaker_rows(frame, utterances)
    out = {}
    for speaker in sorted(rows_of):
        part = counts[rows_of[speaker]]
        jobs = part.sum(axis=(0, 2, 3)) > 0
        folds = np.unique(fold_of_job[jobs], return_inverse=True)[1]  # the folds that tested this speaker
        part = part[:, jobs]
        estimate = fold_statistic(part, folds)
        intervals, plan = cluster_interval(part, folds, speakers_known=False)
        out[speaker] = {"utterances": len(rows_of[speaker]), "gender": gender_of.get(speaker) if gender_of.get(speaker) in GENDERS else None,
                        **{m: {"mean": float(estimate[m][0]), "ci95": clip(intervals[m])} for m in METRICS},
                        "reason": plan.reason}
    return {"interval": SPEAKER_INTERVAL, "speakers": out, "spread": spread(out, METRICS)}


def speaker_rows(frame: pd.DataFrame, utterances) -> tuple[dict[str, list[int]], dict]:
    """(each speaker's row numbers in ``utterances``, each speaker's genders as one string of
    :data:`GENDERS` letters; empty when the predictions carry none)."""
    speaker_of = dict(zip(frame["utterance_id"].astype(str), frame["speaker"].astype(str)))
    rows_of: dict[str, list[int]] = {}
    for u, name in enumerate(utterances):
        rows_of.setdefault(speaker_of[name], []).append(u)
    genders = gender_column(frame)
    gender_of = ({} if genders is None else
                 genders.groupby(frame["speaker"].astype(str)).agg(lambda g: "".join(sorted(set(g) & set(GENDERS)))))
    return rows_of, gender_of


def spread(speakers: dict, metrics) -> dict:
    """Per metric, the worst and best speaker and the standard deviation over speakers of their
    estimates (``speakers``: a ``speaker`` section's entries)."""
    out = {}
    for m in metrics:
        values = {name: entry[m]["mean"] for name, entry in speakers.items()}
        worst, best = min(values, key=values.get), max(values, key=values.get)
        out[m] = {"min": values[worst], "worst": worst, "max": values[best], "best": best,
                  "std": float(np.std(list(values.values()), ddof=1)) if len(values) > 1 else 0.0}
    return out


def summarize(frame: pd.DataFrame, classes: list[str], speakers_known: bool, overall: dict,
              threshold: float = FAIRNESS_THRESHOLD,
              per_class: tuple[float, float] = (RECALL_PER_CLASS_THRESHOLD, PRECISION_PER_CLASS_THRESHOLD)) -> dict:
    """A result's ``groups`` section: ``gender`` (None when unknown) and ``speaker`` (None
    when the protocol does not know its speakers: each utterance would be its own group).
    ``per_class``: audEERING's recall and precision per class thresholds."""
    return {"gender": by_gender(frame, classes, speakers_known, overall, threshold, per_class),
            "speaker": by_speaker(frame, classes) if speakers_known else None}
