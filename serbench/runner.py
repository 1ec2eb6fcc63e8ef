"""A run: resolve the configuration, then one independent job per (fold, seed), then a summary.

The runner knows no paper, corpus or model: it reads plugin specs. A run directory is named
after a hash of the fully resolved configuration, so repeating a command resumes it and only
the jobs without a result file are computed.
"""

from __future__ import annotations

import hashlib
import json
import platform
import random
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from serbench import claims, finetune, heap, needs, recipes, stages
from serbench.atomic import write_json
from serbench.audio import load_audio
from serbench.batching import AudioBatcher, FeatureBatcher
from serbench.cache import CacheKey, FeatureCache
from serbench.corpus import Protocol
from serbench.downstream import DownstreamContext
from serbench.errors import SerbenchError
from serbench.features import (
    CACHE_PARAMS,
    CacheStats,
    extract,
    keep_on_device,
    select_layers,
)
from serbench.metrics import METRICS, score
from serbench.overrides import check_keys, parse_overrides
from serbench.progress import Reporter
from serbench.recipes import Recipe
from serbench.registry import Registry, registry
from serbench.results import Result, finish, job_done, job_stem, write_job
from serbench.specs import Spec
from serbench.trainer import TRAIN_PARAMS, FoldData, train_fold
from serbench.user_config import cache_dir, data_location, env_var
from serbench.vad import speech_frames


@dataclass
class Plan:
    """The fully resolved configuration of a run, before anything heavy is built."""

    config: dict
    specs: dict[str, Spec]
    device: torch.device
    data: Path | None
    executor: Spec | None = None  # where the jobs run (serbench_plugins.executors); not in the run id

    @property
    def run_id(self) -> str:
        """Names and a hash of the configuration, without the device and the corpus's location:
        a login node and a GPU node, or two mounts of one corpus, agree on the run directory
        (the corpus's content is checked when a run directory is resumed: corpus.json)."""
        digest = hashlib.sha256(json.dumps(identity(self.config), sort_keys=True).encode()).hexdigest()[:10]
        names = [self.config[k]["name"] for k in ("protocol", "upstream", "downstream")]
        return re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(names)) + f"_{digest}"


def identity(config: Mapping) -> dict:
    """What a run's id hashes: its configuration without where it runs (device, executor and
    its options) and without the corpus's location."""
    out = {k: v for k, v in config.items() if k not in ("device", "executor")}
    out["overrides"] = {k: v for k, v in config["overrides"].items() if k != "executor"}
    out["protocol"] = {k: v for k, v in config["protocol"].items() if k != "data"}
    return out


def load_plan(run_dir: Path, device: str = "auto", reg: Registry | None = None) -> Plan:
    """The plan of an existing run directory, rebuilt from its ``config.json`` with the names,
    overrides and recipe the user gave; refused when today's plugins resolve it otherwise
    (a plugin's parameters changed since) or its id is not the directory's name."""
    run_dir = Path(run_dir)
    try:
        config = json.loads((run_dir / "config.json").read_text())
    except FileNotFoundError:
        raise SerbenchError(f"{run_dir}: no config.json (not a run directory)") from None
    own = (reg or registry()).get("downstream", config["downstream"]["name"]).meta.get("own_pooling")
    rebuilt = plan(config["upstream"]["name"], config["downstream"]["name"], None if own else config["pooling"]["name"],
                   config["loss"]["name"], config["protocol"]["name"], config["protocol"]["data"], config["seeds"],
                   device, config["overrides"], reg, config["recipe"]["name"], config.get("executor", {}).get("name", "local"))
    if rebuilt.run_id != run_dir.name:
        now, then = identity(rebuilt.config), identity(config)
        changed = sorted(k for k in then if json.dumps(now.get(k), sort_keys=True) != json.dumps(then[k], sort_keys=True))
        raise SerbenchError(f"{run_dir}: its config.json now resolves to run {rebuilt.run_id} "
                            f"(changed: {', '.join(changed) or 'the id'}); rerun it with serbench run")
    return rebuilt


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SerbenchError(
                f"--device {device}: CUDA is not available here (torch {torch.__version__}); "
                "use --device cpu or --device auto"
            )
        return torch.device(device)
    raise SerbenchError(f"--device {device!r}: expected auto, cpu or cuda[:N]")


def _data_for(spec: Spec, data: str | Path | None) -> Path | None:
    key = spec.meta.get("data_key")
    if key is None:
        return Path(data) if data else None
    location = data_location(key, data)
    if location is None:
        raise SerbenchError(
            f"protocol {spec.name} needs the {key} corpus and no location is set: pass --data PATH, "
            f"run 'serbench config set data.{key} PATH' or set {env_var(key)}; "
            "to try serbench without a corpus, use --protocol synthetic"
        )
    if not location.exists():
        raise SerbenchError(f"data.{key}: {location} does not exist")
    return location


def load_protocol(
    name: str,
    data: str | Path | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    reg: Registry | None = None,
) -> Protocol:
    """Build one protocol on its own (``serbench splits``, ``serbench data check``);
    ``overrides`` are its parameters, or CLI-style ``["protocol.dev=speaker"]``."""
    reg = reg or registry()
    spec = reg.get("protocol", name)
    if overrides is not None and not isinstance(overrides, Mapping):
        parsed = parse_overrides(overrides)
        check_keys(parsed, {"protocol": spec.params})
        overrides = parsed.get("protocol", {})
    params = spec.resolve(overrides or {}, "-o protocol")
    return spec.build(_data_for(spec, data), **params)


def plan(
    upstream: str,
    downstream: str,
    pooling: str | None = None,
    loss: str | None = None,
    protocol: str = "iemocap_5fold",
    data: str | Path | None = None,
    seeds: Sequence[int] = (0,),
    device: str = "auto",
    overrides: Mapping[str, Mapping[str, Any]] | Sequence[str] | None = None,
    reg: Registry | None = None,
    recipe: str | None = None,
    executor: str = "local",
) -> Plan:
    """Check every name, parameter and path; fill in defaults, the recipe in force under the
    user's overrides. Raises SerbenchError."""
    reg = reg or registry()
    if overrides is None:
        overrides = {}
    elif not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides)
    specs = {"protocol": reg.get("protocol", protocol), "upstream": reg.get("upstream", upstream)}
    specs["downstream"] = reg.get("downstream", downstream)
    meta = specs["downstream"].meta
    method_recipe: Recipe | None = meta.get("recipe")
    chosen = recipes.choose(recipe, method_recipe, downstream)
    paper = method_recipe if chosen == "paper" else None
    demo = bool(paper and paper.demo and specs["protocol"].meta.get("demo"))
    specs["pooling"] = _pooling_spec(reg, pooling, meta, paper, downstream)
    default_loss = (paper and paper.loss) or meta.get("default_loss") or specs["protocol"].meta.get("default_loss", "ce")
    specs["loss"] = reg.get("loss", loss or default_loss)
    # every upstream also takes the host's parameters: layer selection and fine-tuning
    specs["upstream"] = replace(specs["upstream"], params=specs["upstream"].params + finetune.UPSTREAM_PARAMS)
    params = {kind: spec.params for kind, spec in specs.items()}
    runner_spec = reg.get("executor", executor)  # where the jobs run: not part of the run's identity
    check_keys(overrides, {**params, "train": TRAIN_PARAMS, "cache": CACHE_PARAMS, "executor": runner_spec.params})
    recipe_values = paper.nested(demo) if paper else {}
    not_applied = {}
    if recipe_values.get("upstream", {}).get("finetune") and not specs["upstream"].meta.get("trainable", True):
        recipe_values["upstream"].pop("finetune")
        not_applied["upstream.finetune"] = f"{specs['upstream'].name} has no trainable weights"
    merged = recipes.merge(recipe_values, overrides)
    check_keys(merged, {**params, "train": TRAIN_PARAMS, "cache": CACHE_PARAMS, "executor": runner_spec.params})
    if not seeds:
        raise SerbenchError("--seeds: give at least one seed, e.g. --seeds 0,1,2")
    resolved_device = resolve_device(device)
    location = _data_for(specs["protocol"], data)
    config: dict[str, Any] = {
        kind: {"name": spec.name, "params": spec.resolve(merged.get(kind, {}), f"-o {kind}")}
        for kind, spec in specs.items()
    }
    for section, section_params in (("train", TRAIN_PARAMS), ("cache", CACHE_PARAMS)):
        config[section] = Spec(section, dict, "", section_params).resolve(merged.get(section, {}), f"-o {section}")
    if meta.get("upstream") == "finetune":
        config["upstream"]["params"]["finetune"] = True
    if "spec_augment" in meta and "spec_augment" not in overrides.get("upstream", {}):
        config["upstream"]["params"]["spec_augment"] = bool(meta["spec_augment"])
    config["protocol"]["data"] = str(location) if location else None
    config["seeds"] = [int(s) for s in seeds]
    config["device"] = str(resolved_device)
    config["overrides"] = {k: dict(v) for k, v in overrides.items()}
    config["recipe"] = _recipe_record(chosen, paper, recipe_values, overrides, demo, not_applied)
    config["executor"] = {"name": runner_spec.name,
                          "params": runner_spec.resolve(overrides.get("executor", {}), "-o executor")}
    return Plan(config, specs, resolved_device, location, runner_spec)


def _pooling_spec(reg: Registry, pooling: str | None, meta: Mapping, paper: Recipe | None, downstream: str) -> Spec:
    """The pooling plugin; a method with its own pooling refuses ``--pooling``."""
    own = meta.get("own_pooling")
    if own is None:
        return reg.get("pooling", pooling or (paper and paper.pooling) or meta.get("default_pooling", "mean"))
    if pooling is not None:
        raise SerbenchError(f"--pooling {pooling}: downstream {downstream} pools with its own {own}; "
                            "it takes no pooling plugin (see serbench list downstreams " + downstream + ")")

    def refuse(*_args, **_kwargs):
        raise SerbenchError(f"downstream {downstream} pools with its own {own}")

    return Spec(name=f"own: {own}", factory=refuse, summary=f"{downstream}'s own pooling")


def _recipe_record(chosen: str, paper: Recipe | None, values: Mapping, user: Mapping, demo: bool,
                   not_applied: Mapping[str, str]) -> dict:
    """What result.json says about the recipe: which one, from where, what it set (and
    which of its values the user's ``-o`` replaced)."""
    record: dict[str, Any] = {"name": chosen}
    if paper is None:
        return record
    flat = {f"{section}.{k}": v for section, kv in values.items() for k, v in kv.items()}
    user_keys = {f"{section}.{k}" for section, kv in user.items() for k in kv}
    record.update(
        source=paper.source,
        values={k: v for k, v in flat.items() if k not in user_keys},
        replaced_by_user=sorted(k for k in flat if k in user_keys),
        pooling=paper.pooling,
        loss=paper.loss,
        suggested=dict(paper.suggested),
        demo=dict(paper.demo) if demo else None,
        demo_why=paper.demo_why if demo else None,
        not_applied=dict(not_applied),
    )
    return record


def describe_recipe(config: Mapping) -> str:
    """One log line: the recipe in force and what it set."""
    record = config["recipe"]
    if record["name"] == "shared":
        return "recipe shared: the harness's frozen-encoder training (train.* defaults)"
    values = ", ".join(f"{k}={v}" for k, v in record["values"].items()) or "nothing left to set"
    line = f"recipe paper ({record['source']}): {values}"
    if record.get("pooling") or record.get("loss"):
        line += f"; pooling {config['pooling']['name']}, loss {config['loss']['name']}"
    if record["replaced_by_user"]:
        line += f"; replaced by -o: {', '.join(record['replaced_by_user'])}"
    if record["demo"]:
        line += f"; demo-sized variant for this protocol ({record['demo_why']})"
    for key, why in record["not_applied"].items():
        line += f"; {key} not applied: {why}"
    if record["suggested"]:
        line += "; the paper ran " + recipes.suggestion(record["suggested"])
    return line


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _predictions_frame(proto: Protocol, fold: str, seed: int, ids: Sequence[str], probs: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "fold": fold,
            "seed": seed,
            "utterance_id": list(ids),
            "speaker": [proto.utterances[i].speaker for i in ids],
            "label": [proto.utterances[i].label for i in ids],
            "prediction": [proto.classes[k] for k in probs.argmax(1)],
        }
    )
    for k, name in enumerate(proto.classes):
        frame[f"prob_{name}"] = probs[:, k]
    return frame


def execute(the_plan: Plan, out: str | Path = "runs", reporter: Reporter | None = None,
            only: Sequence[tuple[str, int]] | None = None, summarise: bool = True,
            in_process: bool = False) -> Result | None:
    """Run every (fold, seed) job that has no result yet (or those of ``only``) through the
    plan's executor (``in_process``: in this process only, as an executor's worker does),
    then summarise from disk (unless ``summarise`` is false: ``serbench job``)."""
    started = time.perf_counter()
    reporter = reporter or Reporter(quiet=True)
    config, specs, device = the_plan.config, the_plan.specs, the_plan.device
    run_dir = Path(out) / the_plan.run_id
    # everything that can fail on bad input happens before the run directory exists
    protocol = specs["protocol"].build(the_plan.data, **config["protocol"]["params"])
    wanted = needs.declared(specs, config)
    needs.check(protocol, wanted, specs)
    vad_level = needs.vad_aggressiveness(specs, config) if "vad" in wanted else None
    upstream_params = dict(config["upstream"]["params"])
    host = {p.name: upstream_params.pop(p.name) for p in finetune.UPSTREAM_PARAMS}
    layers = host["layers"]
    upstream = specs["upstream"].build(**upstream_params)
    layers = select_layers(layers, upstream.num_layers, specs["upstream"].name)
    reporter.log_to(run_dir / "run.log")
    try:
        _check_corpus(run_dir, protocol)
        write_json(run_dir / "config.json", config)
        reporter.info(f"run {the_plan.run_id} -> {run_dir}")
        reporter.info(describe_recipe(config))
        jobs = [(fold.name, seed) for fold in protocol.folds for seed in config["seeds"]]
        write_json(run_dir / "jobs.json", [{"fold": fold, "seed": seed} for fold, seed in jobs])  # serbench status
        unknown = [job for job in (only or ()) if job not in jobs]
        if unknown:
            raise SerbenchError(f"{run_dir}: no job fold {unknown[0][0]} seed {unknown[0][1]} "
                                f"(folds {', '.join(dict.fromkeys(f for f, _ in jobs))}; seeds {config['seeds']})")
        pending = [job for job in jobs if not job_done(run_dir, *job) and (only is None or job in only)]
        if len(pending) < len(jobs):
            reporter.info(f"resuming: {len(jobs) - len(pending)} of {len(jobs)} jobs already done")
        features_s, cache_stats, vad_masks, no_speech = 0.0, CacheStats(), None, None
        with reporter.session():
            if pending:
                tuning = host["finetune"]
                features = None
                if not tuning:
                    t0 = time.perf_counter()
                    features, cache_stats = _features(protocol, pending, upstream, layers, the_plan, reporter)
                    features_s = time.perf_counter() - t0
                    if vad_level is not None:
                        vad_masks, no_speech = _vad(protocol, features, upstream.frame_rate, vad_level, reporter)
                    features = keep_on_device(features, device)
                folds = {f.name: f for f in protocol.folds}
                make_upstream = lambda: specs["upstream"].build(**upstream_params)  # noqa: E731
                frozen = tuning and host["freeze_frontend"] and host["cache_frontend"]
                frontend_cache = {} if frozen else None  # the frozen front-end's outputs, for every job

                def run_claimed(fold_name: str, seed: int) -> bool:
                    """Run the job if this process can claim it; False when another owner holds it."""
                    claim = claims.take(run_dir, fold_name, seed)
                    if claim is None:
                        return False
                    with claim:
                        if not job_done(run_dir, fold_name, seed):  # finished by another process meanwhile
                            encoder = make_upstream() if tuning else upstream  # a fresh encoder per job
                            _run_job(protocol, folds[fold_name], seed, features, encoder, layers, the_plan,
                                     run_dir, reporter, vad_masks, vad_level, frontend_cache)
                            heap.release()  # the job's freed tensors go back to the system
                    return True

                def work() -> None:
                    with reporter.task("jobs (fold x seed)", len(pending)) as advance_jobs:

                        def one_pass(todo: list) -> list:
                            """Run what can be claimed; return the jobs other processes hold."""
                            held = []
                            for job in todo:
                                if job_done(run_dir, *job) or run_claimed(*job):
                                    advance_jobs(1)
                                else:
                                    held.append(job)
                            return held

                        held = one_pass(pending)
                        if held:
                            reporter.info(f"{len(held)} jobs are claimed by other processes: waiting for them "
                                          f"(a claim whose owner dies is taken over)")
                        while held:  # jobs other processes hold: wait, or take over a claim whose owner died
                            time.sleep(claims.POLL)
                            held = one_pass(held)
                if in_process:
                    work()
                else:
                    runner = the_plan.executor.build(**config["executor"]["params"])
                    runner.run(run_dir, pending, str(device), work)
        if not summarise:
            done = sum(job_done(run_dir, *job) for job in jobs)
            reporter.info(f"{done} of {len(jobs)} jobs done" + ("" if done < len(jobs) else f"; serbench finish {run_dir}"))
            return None
        missing = [job for job in jobs if not job_done(run_dir, *job)]
        if missing:
            raise SerbenchError(f"{run_dir}: {len(missing)} of {len(jobs)} jobs not done (first: fold {missing[0][0]} "
                                f"seed {missing[0][1]}); run them (serbench run, or serbench job) first")
        result = finish(
            run_dir, jobs, protocol.classes, protocol.main_metric,
            config={
                "upstream": config["upstream"]["name"],
                "downstream": config["downstream"]["name"],
                "pooling": config["pooling"]["name"],
                "loss": config["loss"]["name"],
                "protocol": config["protocol"]["name"],
                "seeds": config["seeds"],
                "overrides": config["overrides"],
                "recipe": config["recipe"],
                "params": {k: config[k]["params"] for k in specs} | {"train": config["train"]},
            },
            plugins={spec.name: spec.version for spec in specs.values()},
            upstream_fingerprint=upstream.fingerprint(),
            environment={
                "python": platform.python_version(),
                "torch": torch.__version__,
                "device": str(device),
                "data": config["protocol"]["data"],
                "platform": platform.platform(),
            },
            cache=cache_stats.__dict__,
            annotations={"vad_no_speech": no_speech} if vad_level is not None else {},
            timing={"total_s": round(time.perf_counter() - started, 3), "features_s": round(features_s, 3)},
        )
        data = result.data
        reporter.info(
            "done: " + ", ".join(f"{m} {data['summary'][m]['mean'] * 100:.2f}" for m in METRICS)
        )
        return result
    finally:
        reporter.close()


def corpus_digest(protocol: Protocol) -> str:
    """What a run's results depend on in the corpus: every utterance's id, label, speaker and
    gender, and every fold's membership (audio bytes are not read: the feature cache keys on them)."""
    digest = hashlib.sha256()
    for uid in sorted(protocol.utterances):
        u = protocol.utterances[uid]
        digest.update(json.dumps([uid, u.label, u.speaker, u.gender]).encode())
    for fold in protocol.folds:
        digest.update(json.dumps([fold.name, sorted(fold.train), sorted(fold.dev), sorted(fold.test)]).encode())
    return digest.hexdigest()[:16]


def _check_corpus(run_dir: Path, protocol: Protocol) -> None:
    """A run directory is resumed only on the corpus it was started on (its id does not hold
    the corpus's location, so a copy elsewhere with other content must be caught here)."""
    record = run_dir / "corpus.json"
    digest = corpus_digest(protocol)
    if record.exists():
        previous = json.loads(record.read_text()).get("digest")
        if previous != digest:
            raise SerbenchError(f"{run_dir}: started on another corpus (utterances, labels or folds differ: "
                                f"{previous} there, {digest} now); use another --out or remove that run directory")
        return
    write_json(record, {"digest": digest, "utterances": len(protocol.utterances), "folds": len(protocol.folds)})


def _features(protocol: Protocol, pending, upstream, layers, the_plan: Plan, reporter: Reporter):
    """Features of every utterance the pending jobs touch, through the cache unless disabled."""
    config, specs = the_plan.config, the_plan.specs
    todo = {fold for fold, _ in pending}
    needed = sorted({i for f in protocol.folds if f.name in todo for i in f.train + f.dev + f.test})
    utterances = [protocol.utterances[i] for i in needed]
    cache = None
    if config["cache"]["enabled"]:
        key = CacheKey(specs["upstream"].name, upstream.fingerprint(), layers, config["cache"]["dtype"],
                       upstream.dim, upstream.frame_rate)
        cache = FeatureCache(cache_dir(), key)
    with reporter.task(f"features ({specs['upstream'].name})", len(utterances)) as advance:
        features, stats = extract(upstream, utterances, the_plan.device, layers, cache,
                                  config["cache"]["budget_gb"] * 1e9, config["cache"]["dtype"], on_batch=advance)
    reporter.info(f"features: {len(features)} utterances (cache: {stats.hits} hits, {stats.misses} misses)")
    return features, stats


def _vad(protocol: Protocol, features, frame_rate: float, level: int, reporter: Reporter):
    """Speech masks aligned to every utterance's feature frames, and how many have none."""
    masks = {}
    with reporter.task("voice activity (webrtcvad)", len(features)) as advance:
        for uid, array in features.items():
            masks[uid] = speech_frames(load_audio(protocol.utterances[uid].path), frame_rate, array.shape[1], level)
            advance(1)
    empty = sum(not m.any() for m in masks.values())
    reporter.info(f"voice activity: {empty} of {len(masks)} utterances have no speech frame (they use all frames)")
    return masks, empty


def _run_job(protocol, fold, seed, features, upstream, layers, the_plan: Plan, run_dir: Path, reporter: Reporter,
             vad_masks=None, vad_level=None, frontend_cache: dict | None = None) -> None:
    """One (fold, seed): build, train, test once, write the job's files. ``frontend_cache``:
    the run's frozen front-end outputs (fine-tuning), shared by its jobs."""
    config, specs = the_plan.config, the_plan.specs
    train = config["train"]
    t0 = time.perf_counter()
    _seed_everything(seed)
    pooling_spec, pooling_params = specs["pooling"], config["pooling"]["params"]
    context = DownstreamContext(
        num_layers=len(layers),
        dim=upstream.dim,
        frame_rate=upstream.frame_rate,
        classes=tuple(protocol.classes),
        make_pooling=lambda dim: pooling_spec.build(dim, **pooling_params),
        train_counts=tuple(protocol.label_counts(fold.train)),
        loss=specs["loss"].name,
    )
    model = specs["downstream"].build(context, **config["downstream"]["params"])
    loss = specs["loss"].build(protocol.classes, protocol.label_counts(fold.train), **config["loss"]["params"])
    groups = None
    if features is None:  # fine-tuning: the encoder is part of the model
        tuning = config["upstream"]["params"]
        finetune.prepare(upstream, tuning["freeze_frontend"], tuning["gradient_checkpointing"], tuning["spec_augment"])
        model = finetune.FineTuneModel(upstream, model, layers, vad_level, frontend_cache)
        groups = finetune.parameter_groups(model, train["lr"], tuning["lr"])
        batcher = AudioBatcher(protocol.utterances, protocol.classes, train["crop_seconds"], seed, the_plan.device,
                               max_seconds=train["max_seconds"])
    else:
        max_frames = int(train["max_seconds"] * upstream.frame_rate)
        batcher = FeatureBatcher(features, protocol.utterances, protocol.classes, the_plan.device, vad_masks, max_frames)
    data = FoldData(batcher, protocol.utterances, protocol.classes, fold.train, fold.dev, fold.test)
    method_stages = getattr(model.downstream if features is None else model, "stages", None)
    if method_stages is not None:
        model.to(the_plan.device)
        stages.run_stages(model, method_stages(), {"train": fold.train, "dev": fold.dev}, batcher, the_plan.device,
                          seed, run_dir / "stages" / job_stem(fold.name, seed), specs["downstream"].name, reporter.info,
                          reporter.task, bf16=train["bf16"])
    with reporter.task(f"fold {fold.name} seed {seed} (epochs)", train["max_epochs"], announce=False) as advance:
        outcome = train_fold(
            model, loss, data, protocol.main_metric, train, seed, the_plan.device,
            on_epoch=lambda epoch, dev: advance(1), groups=groups,
        )
    frame = _predictions_frame(protocol, fold.name, seed, fold.test, outcome.test_probs)
    dev_frame = _predictions_frame(protocol, fold.name, seed, fold.dev, outcome.dev_probs)
    y_true = np.array([protocol.classes.index(label) for label in frame["label"]])
    metrics = score(y_true, outcome.test_probs.argmax(1), protocol.classes)
    record = {
        "fold": fold.name,
        "seed": seed,
        "n_train": len(fold.train),
        "n_dev": len(fold.dev),
        "n_test": len(fold.test),
        "metrics": {m: metrics[m] for m in METRICS},
        "per_class": metrics["per_class"],
        "confusion": metrics["confusion"],
        "best_epoch": outcome.best_epoch,
        "epochs_run": outcome.epochs_run,
        "dev_history": outcome.dev_history,
        "train_s": round(time.perf_counter() - t0, 3),
    }
    write_job(run_dir, record, frame, dev_frame)
    reporter.info(
        f"fold {fold.name} seed {seed}: " + ", ".join(f"{m} {metrics[m] * 100:.2f}" for m in METRICS)
        + f" (best epoch {outcome.best_epoch}/{outcome.epochs_run})"
    )


def run(
    upstream: str,
    downstream: str,
    pooling: str | None = None,
    loss: str | None = None,
    protocol: str = "iemocap_5fold",
    data: str | Path | None = None,
    seeds: Sequence[int] = (0,),
    device: str = "auto",
    out: str | Path = "runs",
    overrides: Mapping[str, Mapping[str, Any]] | Sequence[str] | None = None,
    quiet: bool = True,
    recipe: str | None = None,
    executor: str = "local",
) -> Result:
    """Run ``downstream`` on ``upstream`` under ``protocol``; returns the written result.

    ``overrides`` is ``{"train": {"lr": 1e-4}}`` or CLI-style ``["train.lr=1e-4"]``; ``recipe``
    is ``"paper"`` (the default for a method that declares one) or ``"shared"``; ``executor``
    names where the jobs run (``-o executor.workers=2`` style keys go in ``overrides``)."""
    the_plan = plan(upstream, downstream, pooling, loss, protocol, data, seeds, device, overrides, recipe=recipe,
                    executor=executor)
    return execute(the_plan, out, Reporter(quiet=quiet))
