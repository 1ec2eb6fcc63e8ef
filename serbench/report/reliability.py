"""The reliability diagram of ``serbench plot``: accuracy against confidence in the 15
equal-width bins of the top-label ECE (:mod:`serbench.report.calibration`).

Drawn from the run's ``predictions.csv`` (every (fold, seed) job's test predictions together,
an utterance once per seed), with the share of predictions per bin beneath, since a large gap
in a nearly empty bin weighs little in the ECE. A result without probability columns gets no
diagram.
"""

from __future__ import annotations

import numpy as np

from serbench.report.calibration import BINS, bin_index, prob_columns, probabilities
from serbench.report.results import Result, read_run_predictions


def reliability_bins(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> dict[str, np.ndarray]:
    """Per bin: the number of predictions, their mean confidence and their accuracy (NaN when empty)."""
    confidence = probs.max(1)
    correct = (probs.argmax(1) == labels).astype(np.float64)
    which = bin_index(confidence, bins)
    count = np.bincount(which, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore"):
        return {"count": count,
                "confidence": np.bincount(which, confidence, minlength=bins) / count,
                "accuracy": np.bincount(which, correct, minlength=bins) / count}


def draw(plt, result: Result, records: list[dict]):
    """The diagram, or None when the run's predictions carry no probabilities."""
    classes = result.data["classes"]
    frame = read_run_predictions(result)
    if not all(c in frame.columns for c in prob_columns(classes)):
        return None
    probs = probabilities(frame, classes, str(result.dir.predictions))
    labels = frame["label"].map({c: k for k, c in enumerate(classes)}).to_numpy()
    found = reliability_bins(probs, labels)
    edges = np.linspace(0, 1, BINS + 1)
    centres, width = (edges[:-1] + edges[1:]) / 2, 1.0 / BINS
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(4.8, 5.6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    filled = found["count"] > 0
    top.bar(centres[filled], found["accuracy"][filled], width=width, edgecolor="black", color="#4c72b0",
            label="accuracy")
    top.bar(centres[filled], (found["confidence"] - found["accuracy"])[filled], bottom=found["accuracy"][filled],
            width=width, color="#dd8452", alpha=0.45, edgecolor="#dd8452", label="gap to mean confidence")
    top.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    scored = result.data.get("calibration") or {}
    ece = scored.get("ece", {}).get("mean") if isinstance(scored, dict) else None
    top.set_title("reliability (all jobs' test predictions)" + (f"; ECE {ece * 100:.2f}% (mean over jobs)" if ece is not None else ""))
    top.set_ylabel("accuracy")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.legend(fontsize=7, loc="upper left")
    bottom.bar(centres, found["count"] / max(found["count"].sum(), 1), width=width, color="grey", edgecolor="black")
    bottom.set_xlabel(f"confidence (top-label probability), {BINS} equal-width bins")
    bottom.set_ylabel("share")
    return figure
