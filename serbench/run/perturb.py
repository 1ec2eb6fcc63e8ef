"""Perturbation conditions: ``NAME[:key=value,...]`` parsed into a registered perturbation with
checked parameters, and applied to an utterance's audio deterministically.

A condition's random draws come from a generator seeded by the condition (its name, version,
resolved parameters and the plugin's fingerprint, e.g. the digest of a noise folder) and the
utterance's audio hash, never by the run's seed or by the order utterances are met: every
(fold, seed) job, every process and every rerun sees the same perturbed copy of an utterance,
which is what lets the feature cache keep one entry per (condition, utterance) and what pairs
a perturbed prediction with its clean one. A training-augmentation copy adds its copy index.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from serbench.api.audio import load_utterance
from serbench.api.errors import ContractError, SerbenchError
from serbench.api.specs import Param, Spec
from serbench.run.cache import utterance_hash
from serbench.run.overrides import parse_value
from serbench.run.registry import Registry, registry

SEED = Param("seed", int, 0, "seed of the condition's random draws (mixed with each utterance's audio hash)",
             bounds=">= 0")


@dataclass(frozen=True)
class Condition:
    """One perturbation with resolved parameters: what ``--perturb`` and ``train.augment`` name."""

    name: str
    version: str
    params: dict = field(hash=False)  # resolved: every parameter of the plugin, and the seed

    @property
    def key(self) -> str:
        """The canonical spelling, ``noise:kind=white,seed=0,snr=5.0``: one name per condition however
        the user wrote it (the table's row label and the file column)."""
        shown = ",".join(f"{k}={self.params[k]}" for k in sorted(self.params))
        return f"{self.name}:{shown}" if shown else self.name

    def label(self, defaults: dict) -> str:
        """Short, for tables: the name and the parameters that differ from ``defaults``."""
        shown = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()) if defaults.get(k) != v)
        return f"{self.name}:{shown}" if shown else self.name

    def record(self, reg: Registry | None = None) -> dict:
        spec = _with_seed(_spec(self.name, "perturbation", reg))
        return {"name": self.name, "version": self.version, "params": dict(self.params), "key": self.key,
                "label": self.label({p.name: p.default for p in spec.params})}


def parse(text: str, option: str = "--perturb", reg: Registry | None = None) -> Condition:
    """``NAME[:key=value,...]`` -> a :class:`Condition`; bad input is one line naming ``option``."""
    if not isinstance(text, str) or not text.strip():
        raise SerbenchError(f"{option} {text!r}: expected NAME[:key=value,...], e.g. noise:snr=5")
    name, _, rest = text.strip().partition(":")
    spec = _spec(name.strip(), option, reg)
    given: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SerbenchError(f"{option} {text!r}: {item!r} is not key=value (e.g. {spec.name}:"
                                f"{spec.params[0].name if spec.params else 'seed'}=...)")
        if key.strip() in given:
            raise SerbenchError(f"{option} {text!r}: {key.strip()!r} is given twice")
        given[key.strip()] = parse_value(value.strip())
    return Condition(spec.name, spec.version, _with_seed(spec).resolve(given, f"{option} {spec.name}"))


def parse_all(texts: Sequence[str], option: str = "--perturb", reg: Registry | None = None) -> list[Condition]:
    """Each of ``texts`` parsed; a condition named twice (however spelt) is refused."""
    conditions, seen = [], {}
    for text in texts:
        condition = parse(text, option, reg)
        if condition.key in seen:
            raise SerbenchError(f"{option} {text!r}: the same condition as {seen[condition.key]!r} (given twice)")
        seen[condition.key] = text
        conditions.append(condition)
    return conditions


def _spec(name: str, option: str, reg: Registry | None) -> Spec:
    try:
        return (reg or registry()).get("perturbation", name)
    except SerbenchError as exc:
        raise SerbenchError(f"{option}: {exc}") from None


def _with_seed(spec: Spec) -> Spec:
    return Spec(spec.name, spec.factory, spec.summary, spec.params + (SEED,), spec.version)


class Perturber:
    """A built condition: ``apply`` perturbs one utterance's waveform, ``load`` reads and perturbs it."""

    def __init__(self, condition: Condition, reg: Registry | None = None):
        self.condition = condition
        spec = _spec(condition.name, "perturbation", reg)
        params = {k: v for k, v in condition.params.items() if k != SEED.name}
        self.plugin = spec.build(**params)
        extra = self.plugin.fingerprint() if callable(getattr(self.plugin, "fingerprint", None)) else ""
        self.fingerprint = hashlib.blake2b(
            json.dumps([condition.key, condition.version, str(extra)]).encode(), digest_size=8).hexdigest()

    def rng(self, audio: str, copy: int = 0) -> np.random.Generator:
        """The generator for one utterance (``audio``: its content hash) and augmentation copy."""
        digest = hashlib.blake2b(f"{self.fingerprint}|{audio}|{copy}".encode(), digest_size=8).digest()
        return np.random.default_rng(int.from_bytes(digest, "little"))

    def apply(self, wav: np.ndarray, audio: str, copy: int = 0) -> np.ndarray:
        """The perturbed waveform, checked: same length, finite, float32."""
        out = self.plugin(np.asarray(wav, dtype=np.float32), self.rng(audio, copy))
        name = f"perturbation {self.condition.name}"
        if not isinstance(out, np.ndarray) or out.ndim != 1 or out.size != wav.size:
            shape = getattr(out, "shape", type(out).__name__)
            raise ContractError(f"{name} returned {shape} for a waveform of {wav.size} samples: a perturbation "
                                "returns a 1-D array of the same length")
        if not np.isfinite(out).all():
            raise ContractError(f"{name} returned NaN/inf samples")
        return np.ascontiguousarray(out, dtype=np.float32)

    def load(self, utterance, copy: int = 0) -> np.ndarray:
        return self.apply(load_utterance(utterance), utterance_hash(utterance), copy)


def from_records(records: Sequence[dict], reg: Registry | None = None) -> list[Condition]:
    """Conditions as a run's ``config.json`` holds them (re-resolved against today's plugins)."""
    return [parse(record["key"], "config.json perturb", reg) for record in records]
