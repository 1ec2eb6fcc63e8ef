"""Classification metrics from confusion matrices, batched so the bootstrap can reuse them.

Definitions match scikit-learn's: UA = balanced accuracy (mean recall over classes present
in the reference), WA = accuracy, macro-F1 = mean F1 over classes present in the reference
or the predictions.
"""

from __future__ import annotations

import numpy as np

METRICS = ("ua", "wa", "macro_f1")


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``[K, K]`` counts, rows = reference, columns = prediction."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """UA, WA and macro-F1 for one ``[K, K]`` or many ``[..., K, K]`` confusion matrices."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support = cm.sum(axis=-1)
    predicted = cm.sum(axis=-2)
    total = support.sum(axis=-1)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * tp, support + predicted)
    present = support > 0
    seen = present | (predicted > 0)
    return {
        "ua": _ratio((recall * present).sum(-1), present.sum(-1).astype(np.float64)),
        "wa": _ratio(tp.sum(-1), total),
        "macro_f1": _ratio((f1 * seen).sum(-1), seen.sum(-1).astype(np.float64)),
    }


def score(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict:
    """Headline metrics plus per-class recall / F1 and the confusion matrix, JSON-ready."""
    cm = confusion(y_true, y_pred, len(classes))
    tp = np.diag(cm).astype(np.float64)
    recall = _ratio(tp, cm.sum(1).astype(np.float64))
    f1 = _ratio(2 * tp, (cm.sum(1) + cm.sum(0)).astype(np.float64))
    headline = {k: float(v) for k, v in from_confusion(cm).items()}
    return {
        **headline,
        "per_class": {
            c: {"recall": float(r), "f1": float(f), "support": int(s)}
            for c, r, f, s in zip(classes, recall, f1, cm.sum(1))
        },
        "confusion": cm.tolist(),
    }
