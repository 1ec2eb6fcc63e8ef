"""Conditioning an utterance vector on speaker gender and transcript (Diatlova et al. 2024).

Gender: a learnable embedding per gender (female, male, unknown) combined with the pooled
vector x by ``sum`` (x + e), ``sum_half`` ((x + e) / 2), ``mul`` (x * e), ``stack_linear``
(Linear(concat(x, e))) or ``cln``, conditional layer norm y = f(e) * (x - mean) / std + g(e)
with linear f and g. Text: F(t) = Linear -> LayerNorm -> ReLU -> Dropout of the sentence
embedding t, combined with gender as ``sum_third`` ((x + e + F(t)) / 3), ``mul``
(x * e * F(t)) or ``cln`` (conditioning vector Linear(concat(e, F(t))) in a conditional layer
norm). Text modes include the gender embedding, so they replace the gender mode.

The plugin's own choice, not the paper's: conditional layer norm divides by the standard
deviation sqrt(var + 1e-5), as layer norm does, where the paper's formula (as read here)
divides by the variance.
"""

from __future__ import annotations

import torch
from torch import nn

from serbench.api.blocks import gender_ids


class ConditionalLayerNorm(nn.Module):
    """y = f(c) * (x - mean(x)) / std(x) + g(c), normalising over features."""

    def __init__(self, dim: int, condition_dim: int):
        super().__init__()
        self.scale = nn.Linear(condition_dim, dim)
        self.shift = nn.Linear(condition_dim, dim)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        normed = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + 1e-5)
        return self.scale(condition) * normed + self.shift(condition)


class Conditioning(nn.Module):
    def __init__(self, dim: int, gender: str, text: str, text_dim: int, dropout: float):
        super().__init__()
        if gender != "none" and text != "none":
            raise ValueError("text modes already combine the gender embedding: set gender=none")
        self.gender_mode, self.text_mode = gender, text
        self.embedding = nn.Embedding(3, dim) if (gender != "none" or text != "none") else None
        if gender == "stack_linear":
            self.stack = nn.Linear(2 * dim, dim)
        if gender == "cln":
            self.cln = ConditionalLayerNorm(dim, dim)
        if text != "none":
            self.text = nn.Sequential(nn.Linear(text_dim, dim), nn.LayerNorm(dim), nn.ReLU(), nn.Dropout(dropout))
        if text == "cln":
            self.merge = nn.Linear(2 * dim, dim)
            self.cln = ConditionalLayerNorm(dim, dim)

    def forward(self, x: torch.Tensor, batch: dict) -> torch.Tensor:
        if self.embedding is None:
            return x
        e = self.embedding(gender_ids(batch["genders"], x.device))
        if self.text_mode != "none":
            t = self.text(batch["text_embedding"].to(x.dtype))
            if self.text_mode == "sum_third":
                return (x + e + t) / 3
            if self.text_mode == "mul":
                return x * e * t
            return self.cln(x, self.merge(torch.cat([e, t], dim=-1)))
        if self.gender_mode == "sum":
            return x + e
        if self.gender_mode == "sum_half":
            return (x + e) / 2
        if self.gender_mode == "mul":
            return x * e
        if self.gender_mode == "stack_linear":
            return self.stack(torch.cat([x, e], dim=-1))
        return self.cln(x, e)
