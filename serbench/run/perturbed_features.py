"""Frozen features of perturbed audio: each test-time condition's copy of the test utterances,
and each training-augmentation copy of the training utterances, extracted like clean features
into a cache folder of their own (the :class:`~serbench.run.cache.CacheKey` carries the
perturbation's fingerprint and copy), so a rerun, another seed or another run reads them back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from serbench.api.progress import Reporter
from serbench.api.user_config import cache_dir
from serbench.run import augment, precision
from serbench.run.cache import CacheKey, FeatureCache
from serbench.run.features import extract, keep_on_device
from serbench.run.perturb import Perturber, from_records
from serbench.run.stored_features import release_maps


def load(ws, jobs: Sequence, key: CacheKey | None, reporter: Reporter) -> tuple[dict | None, list | None]:
    """(perturbed, augmented) for the folds of ``jobs``: {condition key: {test id: features}}
    under ``--perturb`` and one {train id: features} per ``train.augment`` copy, each None when
    unused; ``key``: the clean features' cache key (None: no cache)."""
    config, folds = ws.plan.config, {job.fold for job in jobs}
    chosen = [f for f in ws.protocol.folds if f.name in folds]
    perturbed = augmented = None
    if config.get("perturb"):
        test = sorted({i for f in chosen for i in f.test})
        perturbed = {c.key: _extract(ws, test, Perturber(c), 0, key, reporter, c.key)
                     for c in from_records(config["perturb"])}
    perturb = augment.perturber(config["train"])
    if perturb is not None:
        train = sorted({i for f in chosen for i in f.train})
        augmented = [_extract(ws, train, perturb, k, key, reporter, f"{perturb.condition.key} copy {k}")
                     for k in range(1, config["train"]["augment_copies"] + 1)]
    return perturbed, augmented


def _extract(ws, ids: list[str], perturber: Perturber, copy: int, key: CacheKey | None, reporter: Reporter,
             label: str) -> dict:
    config = ws.plan.config
    tag = f"{perturber.condition.key}#{perturber.fingerprint}" + (f" copy {copy}" if copy else "")  # shown by cache ls
    cache = FeatureCache(cache_dir(), replace(key, perturbation=tag)) if key is not None else None
    name = ws.plan.specs["upstream"].name
    with reporter.task(f"features ({name}, {label})", len(ids)) as advance:
        features, stats = extract(ws.upstream, [ws.protocol.utterances[i] for i in ids], ws.plan.device, ws.layers,
                                  cache, config["cache"]["budget_gb"] * 1e9, config["cache"]["dtype"], on_batch=advance,
                                  name=name, load=lambda u: perturber.load(u, copy), precision=precision.in_force(ws))
    reporter.info(f"features ({label}): {len(features)} utterances (cache: {stats.hits} hits, {stats.misses} misses)")
    return keep_on_device(release_maps(features), ws.plan.device)  # read batch by batch, like clean features
