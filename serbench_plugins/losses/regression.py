"""``ccc`` and ``mse``: regression losses for ``--task dimensional``.

The model's outputs carry ``values`` ``[B, D]`` (one column per dimension of the task, in its
order) and the batch ``targets`` ``[B, D]``: the protocol's dimensional values on its [0, 1]
scale (:mod:`serbench.report.dimensions`). Training on that scale, without standardising the targets
per dimension, is serbench's own choice (the scale the protocol fixes, so that a run's
predictions and its predictions table share one unit); CCC ignores a common affine map of
prediction and target, and a linear head can learn any.

``ccc`` is 1 - CCC per dimension, averaged over the dimensions, with the batch's population
variances (the loss the MSP-Podcast challenge baselines train with); ``mse`` the mean squared
error over utterances and dimensions.
"""

from __future__ import annotations

import torch

from serbench.api.errors import SerbenchError


def _pair(outputs: dict, batch: dict, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if "values" not in outputs or "targets" not in batch:
        raise SerbenchError(f"loss {name} is a regression loss: it needs --task dimensional (a model's 'values' and the "
                            "batch's 'targets')")
    return outputs["values"].float(), batch["targets"].float()


def concordance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Lin's CCC per column of ``[B, D]`` tensors, population variances: ``[D]``."""
    mx, my = x.mean(0), y.mean(0)
    vx, vy = ((x - mx) ** 2).mean(0), ((y - my) ** 2).mean(0)
    cov = ((x - mx) * (y - my)).mean(0)
    return 2 * cov / (vx + vy + (mx - my) ** 2 + 1e-8)


class CCCLoss:
    def __call__(self, outputs: dict, batch: dict) -> torch.Tensor:
        x, y = _pair(outputs, batch, "ccc")
        return 1.0 - concordance(x, y).mean()


class MSELoss:
    def __call__(self, outputs: dict, batch: dict) -> torch.Tensor:
        x, y = _pair(outputs, batch, "mse")
        return ((x - y) ** 2).mean()


def make_ccc(classes: list[str], train_counts: list[int]) -> CCCLoss:
    return CCCLoss()


def make_mse(classes: list[str], train_counts: list[int]) -> MSELoss:
    return MSELoss()
