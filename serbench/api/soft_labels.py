"""Soft labels: the raters' label distribution per utterance, for training and scoring.

Why: the majority label throws away how the raters disagreed. EMO-SUPERB (Wu, Chou, Chang,
Goncalves, Du, Jang, Lee & Lee, "EMO-SUPERB: An In-depth Look at Speech Emotion
Recognition", arXiv:2402.13018, 2024) trains on the distribution of the raters' votes and
scores the classes each utterance's raters chose with some weight; rankings move. serbench's
default stays the majority label: distributions act only when asked for (``-o
train.targets=soft`` or ``--loss soft_ce``), and their metric is added beside the usual ones
when every test utterance has one.

A protocol gives an utterance its distribution in ``Utterance.distribution``: ``{class:
share}`` over the protocol's classes, shares summing to 1 (empty when the corpus has none for
it). Where the raters' votes come from is the protocol's business (IEMOCAP's evaluator lines,
MSP-Podcast's ``labels_detailed.csv``, a CSV's ``soft_<class>`` columns); votes for categories
outside the protocol's classes are dropped and the rest renormalised (serbench's reading: the
task's classes are the only outcomes a model can predict).

The metric, as EMO-SUPERB's code computes it (``emo-superb/expert.py`` of the authors'
``EMOsuperb/EMO-SUPERB-submission`` repository): a class counts as chosen for an utterance
when its share exceeds 1/K (K classes), for the reference distribution and for the model's
probabilities alike; ``soft_macro_f1`` is the macro-average over classes of the F1 of these
multi-label decisions, over the whole test split of a fold (EMO-SUPERB logs it per batch
during training; the test number is over the split). A class neither chosen nor predicted by
any utterance has F1 0, as scikit-learn's ``zero_division=0``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from serbench.api.errors import SerbenchError

NEED = "soft_labels"  # the meta.needs entry of a plugin that trains on distributions
METRIC = "soft_macro_f1"
TOLERANCE = 0.01  # a CSV row's shares may sum to 1 +- this (rounded thirds); they are renormalised
DEFINITION = ("EMO-SUPERB's multi-label macro-F1: a class is chosen when its share exceeds 1/K, in the raters' "
              "distribution and in the predicted probabilities alike (arXiv:2402.13018)")


def from_votes(votes: Mapping[str, float], classes: Sequence[str]) -> dict[str, float]:
    """``{class: share}`` from vote counts per class; votes for other categories are dropped.
    Empty when no vote falls on one of ``classes``."""
    kept = {c: float(votes.get(c, 0.0)) for c in classes if votes.get(c, 0.0) > 0}
    total = sum(kept.values())
    return {c: v / total for c, v in kept.items()} if total > 0 else {}


def from_shares(values: Mapping[str, str], where: str) -> dict[str, float]:
    """A CSV row's ``soft_<class>`` cells as a distribution: every cell a number >= 0, the
    shares summing to 1 within :data:`TOLERANCE` (then renormalised); all cells empty means the
    row has none. Anything else is refused naming ``where`` (file:line)."""
    if not any(str(v).strip() for v in values.values()):
        return {}
    shares = {}
    for name, text in values.items():
        text = str(text).strip()
        if not text:
            raise SerbenchError(f"{where}: soft_{name} is empty while other soft_ columns are filled; give every "
                                "share (0 for a class no rater chose)")
        try:
            share = float(text)
        except ValueError:
            raise SerbenchError(f"{where}: soft_{name} {text!r} is not a number") from None
        if not math.isfinite(share) or share < 0:
            raise SerbenchError(f"{where}: soft_{name} {text!r} is not a share (a number >= 0)")
        shares[name] = share
    total = sum(shares.values())
    if abs(total - 1.0) > TOLERANCE:
        raise SerbenchError(f"{where}: the soft_ columns sum to {total:g}, not 1 (a rater distribution's shares "
                            f"must sum to 1 within {TOLERANCE})")
    return {c: s / total for c, s in shares.items() if s > 0}


def matrix(distributions: Sequence[Mapping[str, float]], classes: Sequence[str]) -> np.ndarray:
    """``[N, K]`` float32 shares in class order (a class absent from a distribution: 0)."""
    return np.array([[d.get(c, 0.0) for c in classes] for d in distributions], dtype=np.float32).reshape(-1, len(classes))


def class_balanced_weights(distributions: np.ndarray) -> np.ndarray:
    """EMO-SUPERB's class weights (the effective number of samples of Cui et al., CVPR 2019):
    n_c = training utterances whose share of class c exceeds 1/K, beta = (N - 1) / N,
    w_c = (1 - beta) / (1 - beta^n_c), scaled to sum to K. A class no training utterance
    chose (n_c = 0, an infinite weight in the formula) counts as chosen once: serbench's choice."""
    n, k = distributions.shape
    if n < 2:
        return np.ones(k)
    chosen = np.maximum((distributions > 1.0 / k).sum(0), 1).astype(np.float64)
    beta = (n - 1) / n
    weights = (1.0 - beta) / (1.0 - np.power(beta, chosen))
    return weights / weights.sum() * k


def macro_f1_above_uniform(reference: np.ndarray, probs: np.ndarray) -> float:
    """:data:`DEFINITION`: ``reference`` and ``probs`` are ``[N, K]`` distributions."""
    k = reference.shape[1]
    truth, chosen = reference > 1.0 / k, probs > 1.0 / k
    tp = (truth & chosen).sum(0)
    wrong = (truth ^ chosen).sum(0)  # false positives + false negatives
    denominator = 2 * tp + wrong
    f1 = np.divide(2 * tp, denominator, out=np.zeros(k), where=denominator > 0)
    return float(f1.mean())


def of(utterances: Mapping, ids: Sequence[str], classes: Sequence[str]) -> np.ndarray | None:
    """The ``[len(ids), K]`` distributions of ``ids``, or None when one of them has none."""
    found = [utterances[i].distribution for i in ids]
    if not found or not all(found):
        return None
    return matrix(found, classes)


def job_metrics(utterances: Mapping, ids: Sequence[str], classes: Sequence[str], probs: np.ndarray) -> dict:
    """``{soft_macro_f1: x}`` for one job's test predictions; empty when a test utterance has
    no distribution (the metric would describe part of the test split only)."""
    reference = of(utterances, ids, classes)
    return {} if reference is None else {METRIC: macro_f1_above_uniform(reference, probs)}


def default_loss(overrides: Mapping[str, Mapping]) -> str | None:
    """``soft_ce`` when the user asked for soft targets (``-o train.targets=soft``) and named no loss."""
    return "soft_ce" if str(overrides.get("train", {}).get("targets", "")).strip() == "soft" else None
