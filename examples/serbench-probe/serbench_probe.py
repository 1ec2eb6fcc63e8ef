"""A third-party serbench downstream: a linear probe on one hidden state.

Where SUPERB's head learns a weighting of every layer, a probe reads one layer (``layer``,
Python indexing over the hidden states the run keeps: -1 is the last) to ask what that layer
alone knows. The frames are pooled by the run's pooling (``--pooling``, ``mean`` unless named)
and one linear map gives the logits.

    pip install ./examples/serbench-probe
    serbench run --upstream tiny --downstream probe -o downstream.layer=0 --protocol synthetic
"""

from __future__ import annotations

from torch import nn

from serbench.api import DownstreamMeta, Param, SerbenchError, Spec, hookimpl
from serbench.api.downstream import DownstreamContext


class LinearProbe(nn.Module):
    def __init__(self, context: DownstreamContext, layer: int):
        super().__init__()
        if not -context.num_layers <= layer < context.num_layers:
            raise SerbenchError(f"-o downstream.layer={layer}: the upstream gives {context.num_layers} hidden states "
                                f"(use {-context.num_layers} to {context.num_layers - 1})")
        self.layer = layer
        self.pooling = context.make_pooling(context.dim)
        self.classifier = nn.Linear(self.pooling.out_dim, len(context.classes))

    def forward(self, batch: dict) -> dict:
        frames = batch["features"][:, self.layer]  # [B, T, D]
        pooled = self.pooling(frames, batch["mask"], batch)
        return {"logits": self.classifier(pooled)}


@hookimpl
def register_downstreams():
    return [Spec(name="probe", factory=LinearProbe, summary="linear probe on one hidden state (example plugin)",
                 params=(Param("layer", int, -1, "the hidden state to read (Python index over the kept layers)"),),
                 meta=DownstreamMeta(default_pooling="mean", default_loss="ce"))]
