"""Dimensional emotion (arousal, valence, dominance): the task's names and its metrics.

A protocol gives each utterance's dimensional values in ``Utterance.attributes``, scaled to
[0, 1] from the corpus's own scale (IEMOCAP 1-5 as (x - 1) / 4, MSP-Podcast 1-7 as (x - 1) / 6,
a CSV's ``attribute_min``..``attribute_max``). Models are trained and scored on that scale; the
concordance correlation coefficient and Pearson's r do not change under one affine map of both
prediction and reference, so they equal the corpus-scale values; MAE is in [0, 1] units.

The metrics follow the MSP-Podcast challenge (Odyssey 2024, attribute track): Lin's
concordance correlation coefficient over the whole test set,

    CCC = 2 cov(x, y) / (var(x) + var(y) + (mean(x) - mean(y))^2),

with population (1/N) variances and covariance, as the challenge's scoring code computes them
(``np.var``, ``np.mean``). Pearson's r and the mean absolute error are reported beside it.
Where a variance is zero (a constant prediction) the coefficient is undefined; serbench scores
it 0 (no agreement measured) rather than NaN, so a fold mean stays a number: serbench's own
choice (audmetric returns NaN there).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DIMENSIONS = ("arousal", "valence", "dominance")  # the order of columns, heads and tables
TASKS = ("categorical", "dimensional")
MAIN_METRIC = "ccc_mean"  # what selects a dimensional model on dev: the mean of the dimensions' CCCs
KINDS = ("ccc", "pearson", "mae")
METRIC_DEFINITIONS = "serbench.dimensional/1"  # CCC (population variances), Pearson r, MAE; bump on a change


def metric_names(dimensions: Sequence[str]) -> tuple[str, ...]:
    """``ccc_mean`` then ``ccc_<dim>``, ``pearson_<dim>`` and ``mae_<dim>`` per dimension:
    the summary keys of a dimensional result, in table order."""
    return (MAIN_METRIC, *(f"{kind}_{d}" for kind in KINDS for d in dimensions))


def moments(prediction: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``[..., 7]`` sums (n, Σx, Σy, Σx², Σy², Σxy, Σ|x - y|) over the last axis of two
    equally shaped arrays (x the prediction): every metric here is a function of them, so sums
    over speakers or folds can be recombined (the cluster interval's jackknife does)."""
    x, y = np.asarray(prediction, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    return np.stack([np.full(x.shape[:-1], x.shape[-1], dtype=np.float64), x.sum(-1), y.sum(-1), (x * x).sum(-1),
                     (y * y).sum(-1), (x * y).sum(-1), np.abs(x - y).sum(-1)], axis=-1)


def from_moments(m: np.ndarray) -> dict[str, np.ndarray]:
    """CCC, Pearson r and MAE from ``[..., 7]`` sums (see :func:`moments`); 0 where undefined."""
    m = np.asarray(m, dtype=np.float64)
    n = m[..., 0]
    safe_n = np.where(n > 0, n, 1.0)
    mx, my = m[..., 1] / safe_n, m[..., 2] / safe_n
    vx = np.maximum(m[..., 3] / safe_n - mx * mx, 0.0)
    vy = np.maximum(m[..., 4] / safe_n - my * my, 0.0)
    cov = m[..., 5] / safe_n - mx * my
    den_ccc = vx + vy + (mx - my) ** 2
    den_r = np.sqrt(vx * vy)
    ok_ccc, ok_r = (den_ccc > 1e-15) & (n > 0), (den_r > 1e-15) & (n > 0)
    return {
        "ccc": np.divide(2 * cov, den_ccc, out=np.zeros_like(cov), where=ok_ccc),
        "pearson": np.clip(np.divide(cov, den_r, out=np.zeros_like(cov), where=ok_r), -1.0, 1.0),
        "mae": np.divide(m[..., 6], safe_n, out=np.zeros_like(n), where=n > 0),
    }


def ccc(prediction: Sequence[float], reference: Sequence[float]) -> float:
    """Lin's concordance correlation coefficient, population variances (computed from the
    centred values, not the sums, for the per-job numbers a result reports)."""
    x, y = np.asarray(prediction, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if x.size == 0:
        return 0.0
    a, b = x - x.mean(), y - y.mean()
    den = (a @ a + b @ b) / x.size + (x.mean() - y.mean()) ** 2
    return float(2 * (a @ b) / x.size / den) if den > 1e-15 else 0.0


def pearson(prediction: Sequence[float], reference: Sequence[float]) -> float:
    """Pearson's r (0 where either variance is zero)."""
    x, y = np.asarray(prediction, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    a, b = x - x.mean(), y - y.mean()
    den = float(np.sqrt((a @ a) * (b @ b)))
    return float(np.clip((a @ b) / den, -1.0, 1.0)) if den > 1e-15 else 0.0


def mae(prediction: Sequence[float], reference: Sequence[float]) -> float:
    x, y = np.asarray(prediction, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    return float(np.abs(x - y).mean()) if x.size else 0.0


def score(prediction: np.ndarray, reference: np.ndarray, dimensions: Sequence[str]) -> dict[str, float]:
    """Every metric of :func:`metric_names` for ``[N, D]`` predictions against ``[N, D]``
    references (columns in the order of ``dimensions``)."""
    out: dict[str, float] = {}
    for k, d in enumerate(dimensions):
        out[f"ccc_{d}"] = ccc(prediction[:, k], reference[:, k])
        out[f"pearson_{d}"] = pearson(prediction[:, k], reference[:, k])
        out[f"mae_{d}"] = mae(prediction[:, k], reference[:, k])
    out[MAIN_METRIC] = float(np.mean([out[f"ccc_{d}"] for d in dimensions]))
    return {name: out[name] for name in metric_names(dimensions)}


def metric_bounds(name: str) -> tuple[float, float]:
    """The range a metric's value and interval live in: [-1, 1] for the correlations, [0, inf)
    for MAE (a prediction may leave the [0, 1] scale) and [0, 1] for the categorical proportions."""
    if name.startswith(("ccc", "pearson")):
        return -1.0, 1.0
    return (0.0, float("inf")) if name.startswith("mae") else (0.0, 1.0)
