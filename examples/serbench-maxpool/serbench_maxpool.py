"""A third-party serbench plugin: one pooling, registered through the ``serbench`` group.

After ``pip install ./examples/serbench-maxpool`` it is listed by ``serbench list poolings``
and used with ``serbench run ... --pooling max``.
"""

import torch
from torch import nn

from serbench.api import Spec, hookimpl


class MaxPooling(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.out_dim = dim

    def forward(self, frames: torch.Tensor, mask: torch.Tensor, batch: dict | None = None) -> torch.Tensor:
        return frames.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)


@hookimpl
def register_poolings():
    return [Spec(name="max", factory=MaxPooling, summary="masked max over valid frames (example plugin)")]
