"""``svm`` and ``logreg``: the classic SER baseline heads (linear SVM, logistic regression)
fitted by scikit-learn on pooled, standardised features, on any upstream.

They are fitted in closed form, not by gradient descent: the host
(:mod:`serbench.run.closed_form`) pools every train and dev utterance through the model's own
pooling, calls :meth:`ClassicHead.fit`, and then predicts through :meth:`forward` like any other
head, so predictions, saved models and ``serbench predict`` take the same path as a neural
head's. After fitting, the head is a standardisation followed by one linear map, kept as
buffers (``mean``, ``scale``, ``weight``, ``bias``): the whole model is a weights-only state dict.

The plugin's own choices (no paper fixes them for serbench's protocols):

- the features: one hidden state (``layer``, default the last kept one) pooled over frames
  by the run's pooling, mean by default (an openSMILE upstream gives one vector per
  utterance, which mean pooling returns unchanged); only poolings without trained weights
  (``mean``, ``std``) are accepted.
- standardisation: zero mean, unit variance fitted on the training split alone (a constant
  feature keeps scale 1, as scikit-learn's ``StandardScaler`` does).
- class weights ``balanced`` (inverse class frequency in training), for imbalanced corpora.
- the regularisation ``C`` is chosen from a named grid by the protocol's main metric on dev
  (the scored split only when ``train.select_split=test`` asks for it); ties go to the
  smaller ``C`` (the stronger regularisation). Every other training option (lr, epochs,
  the loss) has no effect on these heads; ``train.shuffle_labels`` permutes training and
  dev labels as it does for gradient training.
- ``svm`` is scikit-learn's ``LinearSVC`` (liblinear: squared hinge, L2, one-vs-rest), as
  in the ComParE challenge baselines' linear SVMs; its probabilities are the softmax of
  its one-vs-rest margins (uncalibrated: Platt scaling would fit on an inner split of the
  training data and make the scores depend on it). With two classes the logits are
  ``[0, margin]``.
- ``logreg`` is ``LogisticRegression`` (lbfgs, multinomial for three or more classes): its
  probabilities are scikit-learn's ``predict_proba`` exactly.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from serbench.api.downstream import DownstreamContext
from serbench.api.errors import SerbenchError
from serbench_plugins.classic.register import LOGREG_GRID, SVM_GRID


class ClassicHead(nn.Module):
    """Standardise, then one linear map: ``logits = ((x - mean) / scale) @ weight.T + bias``."""

    fitted_in_closed_form = True  # serbench.run.closed_form fits it; the gradient trainer is not used

    def __init__(self, context: DownstreamContext, kind: str, grid: Sequence[float], layer: int, max_iter: int,
                 name: str):
        super().__init__()
        if not -context.num_layers <= layer < context.num_layers:
            raise SerbenchError(f"-o downstream.layer: {layer} is out of range (the run keeps {context.num_layers} "
                                f"hidden states: 0-{context.num_layers - 1}, or -1 for the last)")
        if not grid or any(c <= 0 for c in grid):
            raise SerbenchError(f"-o downstream.grid: {list(grid)} must list one or more values of C, each > 0")
        self.kind, self.grid, self.max_iter, self.name = kind, tuple(float(c) for c in grid), max_iter, name
        self.layer = layer % context.num_layers
        self.pooling = context.make_pooling(context.dim)
        if any(True for _ in self.pooling.parameters()):
            raise SerbenchError(f"downstream {name} is fitted by scikit-learn and cannot train a pooling's weights: "
                                f"use --pooling mean (its default) or std")
        dim, classes = self.pooling.out_dim, len(context.classes)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.register_buffer("weight", torch.zeros(classes, dim))
        self.register_buffer("bias", torch.zeros(classes))

    def pooled(self, batch: dict) -> torch.Tensor:
        """``[B, D]``: the chosen hidden state pooled over each utterance's frames."""
        return self.pooling(batch["features"][:, self.layer], batch["mask"], batch)

    def forward(self, batch: dict) -> dict:
        standard = (self.pooled(batch) - self.mean) / self.scale
        return {"logits": standard @ self.weight.T + self.bias}

    def _estimator(self, c: float, seed: int):
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import LinearSVC

        if self.kind == "svm":
            return LinearSVC(C=c, class_weight="balanced", max_iter=self.max_iter, random_state=seed)
        return LogisticRegression(C=c, class_weight="balanced", max_iter=self.max_iter)

    def fit(self, train_x: np.ndarray, train_y: np.ndarray, dev_x: np.ndarray,
            dev_score: Callable[[np.ndarray], float], seed: int) -> dict:
        """Fit one estimator per ``C`` of the grid on the training split, keep the best on dev
        (``dev_score`` of its dev probabilities); returns what was chosen and why."""
        from sklearn.exceptions import ConvergenceWarning

        classes = self.weight.shape[0]
        missing = sorted(set(range(classes)) - set(np.unique(train_y).tolist()))
        if missing:
            raise SerbenchError(f"downstream {self.name}: the training split has no utterance of class index "
                                f"{missing[0]}: a classifier cannot be fitted for it")
        mean = train_x.mean(0)
        scale = train_x.std(0)
        scale[scale == 0] = 1.0
        standard_train, standard_dev = (train_x - mean) / scale, (dev_x - mean) / scale
        best = None
        scores, unconverged = [], 0
        for c in self.grid:
            estimator = self._estimator(c, seed)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                estimator.fit(standard_train, train_y)
            unconverged += any(issubclass(w.category, ConvergenceWarning) for w in caught)
            weight, bias = _linear(estimator, classes)
            score = float(dev_score(_softmax(standard_dev @ weight.T + bias)))
            scores.append(score)
            if best is None or score > best[0]:
                best = (score, c, weight, bias)
        score, c, weight, bias = best
        for buffer, value in ((self.mean, mean), (self.scale, scale), (self.weight, weight), (self.bias, bias)):
            buffer.copy_(torch.from_numpy(np.asarray(value, dtype=np.float64)).to(buffer))
        return {"C": c, "dev_score": score, "grid": list(self.grid), "dev_scores": scores, "unconverged": unconverged}


def _linear(estimator, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(weight [K, D], bias [K])`` whose softmax is the estimator's probabilities (logreg) or
    the softmax of its margins (svm); binary estimators have one row, which becomes ``[0, row]``."""
    coef, intercept = np.asarray(estimator.coef_, dtype=np.float64), np.asarray(estimator.intercept_, dtype=np.float64)
    if classes == 2 and coef.shape[0] == 1:
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    return coef, intercept


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def make_svm(context: DownstreamContext, grid: tuple = SVM_GRID, layer: int = -1, max_iter: int = 10_000) -> ClassicHead:
    return ClassicHead(context, "svm", grid, layer, max_iter, "svm")


def make_logreg(context: DownstreamContext, grid: tuple = LOGREG_GRID, layer: int = -1,
                max_iter: int = 1_000) -> ClassicHead:
    return ClassicHead(context, "logreg", grid, layer, max_iter, "logreg")
