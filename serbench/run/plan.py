"""A run's plan: every name, parameter, path and recipe resolved before anything heavy is built.

The plan knows no paper, corpus or model: it reads plugin specs. A run directory is named after
a hash of the resolved configuration (without where it runs) and of the corpus's content, so
repeating a command resumes it, and a worker rebuilds the same plan from the run directory's
``config.json`` (:func:`load_plan`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch

from serbench.api import recipes, soft_labels, stage_recipes
from serbench.api.devices import resolve_device
from serbench.api.errors import SerbenchError
from serbench.api.meta import DownstreamMeta
from serbench.api.protocol import Protocol
from serbench.api.recipes import Recipe
from serbench.api.specs import Spec
from serbench.api.textfiles import read_json
from serbench.api.user_config import data_location, env_var
from serbench.report.report_options import REPORT_PARAMS
from serbench.report.robustness import ROBUSTNESS_PARAMS
from serbench.report.rundir import RunDir
from serbench.run import dimensional_task, finetune, perturb, precision
from serbench.run.augment import AUGMENT_PARAMS
from serbench.run.features import CACHE_PARAMS
from serbench.run.overrides import check_keys, parse_overrides
from serbench.run.registry import Registry, registry
from serbench.run.request import RunRequest
from serbench.run.trainer import TRAIN_PARAMS as _TRAINER_PARAMS

TRAIN_PARAMS = _TRAINER_PARAMS + AUGMENT_PARAMS  # the train section: the trainer's, and augmentation


@dataclass
class Plan:
    """The fully resolved configuration of a run, before anything heavy is built."""

    config: dict
    specs: dict[str, Spec]
    device: torch.device
    data: Path | None
    executor: Spec | None = None  # where the jobs run (serbench_plugins.executors); not in the run id
    _protocol: Protocol | None = field(default=None, repr=False, compare=False)
    _corpus: str = field(default="", repr=False, compare=False)  # the protocol's digest, computed once

    def protocol(self) -> Protocol:
        """The corpus and its folds, built once (the run id depends on their content)."""
        if self._protocol is None:
            self._protocol = build_protocol(self.specs["protocol"], self.data, self.config["protocol"]["params"])
        return self._protocol

    @property
    def run_id(self) -> str:
        """Names and a hash of the configuration and of the corpus's content (utterances, labels,
        side information, folds: :meth:`Protocol.digest`), without the device and the corpus's
        location: a login node and a GPU node, or two mounts of one corpus, agree on the run
        directory; two corpora read by one protocol (two EmoBox datasets, two CSV files), or a
        corpus edited since, get directories of their own."""
        self._corpus = self._corpus or self.protocol().digest()  # (read several times a run; a large corpus takes a moment)
        what = {**identity(self.config), "corpus": self._corpus}
        digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:10]
        names = [self.config[k]["name"] for k in ("protocol", "upstream", "downstream")]
        return re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(names)) + f"_{digest}"


def identity(config: Mapping) -> dict:
    """What a run's id hashes: its configuration without where it runs (device, executor and
    its options), without how its predictions are scored (``report``) and without the corpus's
    location."""
    out = {k: v for k, v in config.items() if k not in ("device", "executor", "report")}
    out["overrides"] = {k: v for k, v in config["overrides"].items() if k not in ("executor", "report")}
    out["protocol"] = {k: v for k, v in config["protocol"].items() if k != "data"}
    return out


def load_plan(run_dir: Path, device: str = "auto", reg: Registry | None = None) -> Plan:
    """The plan of an existing run directory, rebuilt from its ``config.json`` with the names,
    overrides and recipe the user gave; refused when today's plugins resolve it otherwise
    (a plugin's parameters changed since) or its id is not the directory's name."""
    run_dir = Path(run_dir)
    try:
        config = read_json(RunDir(run_dir).config, " (a damaged run directory: start it again)")
    except FileNotFoundError:
        raise SerbenchError(f"{run_dir}: no config.json (not a run directory)") from None
    problem = _config_problem(config)
    if problem:
        raise SerbenchError(f"{RunDir(run_dir).config}: {problem} (not a run configuration serbench wrote: a damaged "
                            "or hand-edited run directory; start the run again with serbench run)")
    own = (reg or registry()).get("downstream", config["downstream"]["name"]).meta.own_pooling
    rebuilt = plan(request_of(config, device, own), reg)
    if rebuilt.run_id != run_dir.name:
        now, then = identity(rebuilt.config), identity(config)
        if json.dumps(now, sort_keys=True) == json.dumps(then, sort_keys=True):  # (JSON turned tuples into lists)
            raise SerbenchError(f"{run_dir}: its corpus at {rebuilt.data} changed since it ran (utterances, labels, "
                                "side information or folds): its job files are not results on today's corpus; "
                                "rerun with serbench run (a new run id; this one is kept)")
        bumped = [f"{kind} {now[kind]['name']} {then[kind].get('version', '1')} -> {now[kind]['version']}"
                  for kind in rebuilt.specs if then[kind].get("version", "1") != now[kind]["version"]]
        if bumped:
            raise SerbenchError(f"{run_dir}: its plugins changed version since it ran ({'; '.join(bumped)}): its "
                                "job files are not today's results; rerun with serbench run (a new run id)")
        changed = sorted(k for k in then if json.dumps(now.get(k), sort_keys=True) != json.dumps(then[k], sort_keys=True))
        raise SerbenchError(f"{run_dir}: its config.json now resolves to run {rebuilt.run_id} "
                            f"(changed: {', '.join(changed) or 'the id'}); rerun it with serbench run")
    check_config_file(run_dir, rebuilt.config)
    return rebuilt


def request_of(config: Mapping, device: str = "auto", own_pooling: bool = False) -> RunRequest:
    """The request a run's ``config.json`` was planned from: its names, overrides and recipe
    (``own_pooling``: the method pools with its own, so no pooling was asked for)."""
    return RunRequest(config["upstream"]["name"], config["downstream"]["name"],
                      None if own_pooling else config["pooling"]["name"], config["loss"]["name"],
                      config["protocol"]["name"], config["protocol"]["data"], tuple(config["seeds"]), device,
                      config["overrides"], recipe=config["recipe"]["name"],
                      executor=config.get("executor", {}).get("name", "local"),
                      perturbations=tuple(c["key"] for c in config.get("perturb", [])),
                      task=dimensional_task.task_of(config))


def _config_problem(config: Any) -> str:
    """What keeps ``config`` from being a run's ``config.json`` ('' when nothing): the parts a
    plan is rebuilt from, each of the type serbench wrote."""
    if not isinstance(config, dict):
        return f"a JSON {type(config).__name__}, expected an object"
    for kind in ("upstream", "downstream", "pooling", "loss", "protocol", "recipe"):
        part = config.get(kind)
        if not isinstance(part, dict) or not isinstance(part.get("name"), str):
            return f"{kind}.name missing or not text"
    if not isinstance(config["protocol"].get("data"), (str, type(None))):
        return "protocol.data is neither text nor null"
    seeds = config.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds):
        return "seeds is not a list of integers"
    overrides = config.get("overrides")
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
        return "overrides is not an object of sections"
    if not isinstance(config.get("executor", {}), dict):
        return "executor is not an object"
    return ""


def _differences(a: Any, b: Any, where: str = "") -> list[str]:
    """The dotted keys at which two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in _differences(a.get(k), b.get(k), f"{where}.{k}" if where else str(k))]
    return [] if a == b and type(a) is type(b) else [where or "(the whole file)"]


def check_config_file(run_dir: Path, config: Mapping) -> None:
    """Refuse, naming the file, a run directory whose ``config.json`` is not what its run
    resolves to: serbench rebuilds a run from the names, overrides and recipe in it, so a value
    edited elsewhere in the file (``train.lr``) would be ignored and then written over. Where the
    run is done (device, executor) and the corpus's location may differ between invocations.
    Nothing to check when there is no file yet."""
    path = RunDir(run_dir).config
    try:
        written = read_json(path, " (a damaged run directory: start it again)")
    except FileNotFoundError:
        return
    problem = _config_problem(written)
    if problem:
        raise SerbenchError(f"{path}: {problem} (not a run configuration serbench wrote: a damaged or hand-edited "
                            "run directory; start the run again with serbench run)")
    now = json.loads(json.dumps(identity(config)))  # (JSON turns tuples into lists)
    edited = _differences(identity(written), now)
    if edited:
        shown = ", ".join(edited[:3]) + (", ..." if len(edited) > 3 else "")
        raise SerbenchError(f"{path}: {shown} differ from what the run resolves to (edited by hand?): serbench never "
                            "reads settings from this file but its names, overrides and recipe; give a change as "
                            "-o to serbench run (a new run id), or restore the file")


def corpus_present(spec: Spec, data: str | Path | None = None) -> bool:
    """Whether ``spec``'s corpus is here: it needs none, or its location is set and exists."""
    key = spec.meta.data_key
    if not key:
        return True
    location = data_location(key, data or None)
    return location is not None and location.exists()


def _data_for(spec: Spec, data: str | Path | None) -> Path | None:
    """The corpus location: ``--data``, else the saved or environment setting. An empty
    ``--data ""`` is refused (a path of "" is the current directory to the OS, and falling back
    to the saved location would run on a corpus the user did not name)."""
    if isinstance(data, str) and not data.strip():
        raise SerbenchError(f"--data {data!r}: an empty path; give the corpus's location, or leave --data out "
                            "to use the saved one (serbench config get data.KEY)")
    key = spec.meta.data_key
    if not key:
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
    return build_protocol(spec, _data_for(spec, data), params, reg)


def build_protocol(spec: Spec, data: Path | None, params: Mapping[str, Any], reg: Registry | None = None) -> Protocol:
    """``spec``'s corpus and folds from its resolved ``params``; a protocol that reads other
    protocols (``meta.reads_protocols``: cross_corpus) is handed :func:`load_protocol` bound to
    ``reg`` (the seam that keeps such a plugin inside serbench.api)."""
    loader = {"load_protocol": partial(load_protocol, reg=reg)} if getattr(spec.meta, "reads_protocols", False) else {}
    built = spec.build(data, **params, **loader)
    if not isinstance(built, Protocol):
        raise SerbenchError(f"protocol {spec.name} (plugin {spec.plugin!r}) returned "
                            f"{type(built).__name__}, not a serbench.api.protocol.Protocol")
    return built


def plan(request: RunRequest, reg: Registry | None = None) -> Plan:
    """Check every name, parameter and path of ``request``; fill in defaults, the recipe in force
    under the user's overrides. ``request.perturbations``: test-time conditions (``--perturb
    NAME:k=v``), each scored beside clean. ``request.corpus_optional``: a corpus that is not here
    leaves the plan's ``data`` None instead (a dry run lists such a cell; its run id and cache
    estimate wait for the corpus). Raises SerbenchError."""
    upstream, downstream, pooling, loss = request.upstream, request.downstream, request.pooling, request.loss
    protocol, data, seeds, device = request.protocol, request.data, request.seeds, request.device
    recipe, executor, perturbations, task = request.recipe, request.executor, request.perturbations, request.task
    corpus_optional = request.corpus_optional
    reg = reg or registry()
    overrides = request.override_sections()
    loss = loss or soft_labels.default_loss(overrides)  # -o train.targets=soft: the soft-target loss
    specs = {"protocol": reg.get("protocol", protocol), "upstream": reg.get("upstream", upstream)}
    specs["downstream"] = reg.get("downstream", downstream)
    meta = specs["downstream"].meta
    method_recipe: Recipe | None = meta.recipe
    chosen = recipes.choose(recipe, method_recipe, downstream)
    paper = method_recipe if chosen == "paper" else None
    demo = bool(paper and paper.demo and specs["protocol"].meta.demo)
    specs["pooling"] = _pooling_spec(reg, pooling, meta, paper, downstream)
    default_loss = (paper and paper.loss) or meta.default_loss or specs["protocol"].meta.default_loss or "ce"
    if task == "dimensional":  # a head with one output per dimension regresses with ccc unless told otherwise
        default_loss = dimensional_task.default_loss(specs["downstream"]) or default_loss
    specs["loss"] = reg.get("loss", loss or default_loss)
    # every upstream also takes the host's parameters: layer selection and fine-tuning
    specs["upstream"] = replace(specs["upstream"], params=specs["upstream"].params + finetune.UPSTREAM_PARAMS)
    params = {kind: spec.params for kind, spec in specs.items()}
    runner_spec = reg.get("executor", executor)  # where the jobs run: not part of the run's identity
    check_keys(overrides, {**params, "train": TRAIN_PARAMS, "cache": CACHE_PARAMS, "executor": runner_spec.params,
                           "robustness": ROBUSTNESS_PARAMS,
                           "report": REPORT_PARAMS})
    if meta.upstream == "finetune" and not specs["upstream"].meta.trainable:
        raise SerbenchError(f"downstream {downstream} trains its encoder, and upstream {upstream} has no trainable "
                            "weights: use a transformers upstream (serbench list upstreams)")
    recipe_values = paper.nested(demo) if paper else {}
    not_applied = recipes.set_aside(  # what this path cannot apply (a frozen encoder, another test split), and why
        recipe_values, paper, overrides, upstream=specs["upstream"].name, trainable=specs["upstream"].meta.trainable,
        trains_encoder=meta.upstream == "finetune", test_split=_test_split(specs["protocol"], overrides)) if paper else {}
    merged = recipes.merge(recipe_values, overrides)
    check_keys(merged, {**params, "train": TRAIN_PARAMS, "cache": CACHE_PARAMS, "executor": runner_spec.params,
                        "robustness": ROBUSTNESS_PARAMS,
                        "report": REPORT_PARAMS})
    overrides = _effective(overrides, lambda given: _settings(specs, recipes.merge(recipe_values, given), given, meta))
    merged = recipes.merge(recipe_values, overrides)
    if not seeds:
        raise SerbenchError("--seeds: give at least one seed, e.g. --seeds 0,1,2")
    twice = sorted({int(s) for s in seeds if list(seeds).count(s) > 1})
    if twice:
        raise SerbenchError(f"--seeds: seed {twice[0]} is given twice (every job would run twice)")
    if any(int(s) < 0 for s in seeds):
        raise SerbenchError(f"--seeds: {min(int(s) for s in seeds)} is negative; seeds are integers from 0")
    if any(int(s) >= 2**32 for s in seeds):
        raise SerbenchError(f"--seeds: {max(int(s) for s in seeds)} is too large; seeds are integers below 2**32")
    resolved_device = resolve_device(device)
    location = None if corpus_optional and not corpus_present(specs["protocol"], data) else _data_for(specs["protocol"], data)
    settings = _settings(specs, merged, overrides, meta)
    config: dict[str, Any] = {  # a plugin's version is part of the run's identity: bumping it starts afresh
        kind: {"name": spec.name, "version": spec.version, "params": settings[kind]} for kind, spec in specs.items()
    }
    config["train"], config["cache"] = settings["train"], settings["cache"]
    if config["upstream"]["params"].get("precision") == precision.DEFAULT:  # auto is left out: a run keeps its id
        del config["upstream"]["params"]["precision"]
    config["report"] = settings["report"]  # how the predictions are scored: not part of the run id
    soft_loss = specs["loss"].meta.targets == "soft"
    if config["train"]["targets"] == "soft" and not soft_loss:
        raise SerbenchError(f"-o train.targets=soft: loss {specs['loss'].name} trains on majority labels; leave "
                            "--loss out (soft_ce is then used) or name a soft-target loss (serbench list losses)")
    if soft_loss and config["train"]["shuffle_labels"]:
        raise SerbenchError(f"train.shuffle_labels with loss {specs['loss'].name}: shuffled labels carry no rater "
                            "distributions; run the control with a majority-label loss")
    config["train"]["targets"] = "soft" if soft_loss else config["train"]["targets"]  # --loss soft_ce alone says it too
    if config["train"]["targets"] == "majority":  # the default is left out: a run without soft labels keeps its id
        del config["train"]["targets"]
    dimensional_task.check_plan(task, specs["downstream"], specs["loss"], settings["protocol"], settings["train"])
    dimensional_task.set_protocol_task(config["protocol"]["params"], specs["protocol"], task, overrides)
    if task != "categorical":  # only then: a categorical run keeps the configuration (and id) it had
        config["task"] = dimensional_task.plan_record(task, specs["downstream"])
    config["protocol"]["data"] = str(location) if location else None
    config["seeds"] = [int(s) for s in seeds]
    config["device"] = str(resolved_device)
    config["overrides"] = {k: dict(v) for k, v in overrides.items()}
    config["recipe"] = recipes.record(chosen, paper, recipe_values, overrides, demo, not_applied, pooling, loss)
    if paper and paper.stages:  # each stage's optimiser, lr, schedule, epochs, batch, stopping, and from where
        config["recipe"]["stages"] = stage_recipes.resolve(paper.stages, config, overrides, paper.demo if demo else {})
    config["executor"] = {"name": runner_spec.name,
                          "params": runner_spec.resolve(overrides.get("executor", {}), "-o executor")}
    _perturbation_settings(config, settings["robustness"], perturbations, overrides, reg)
    return Plan(config, specs, resolved_device, location, runner_spec)


def _settings(specs: Mapping[str, Spec], merged: Mapping, user: Mapping, meta: DownstreamMeta) -> dict[str, dict]:
    """Every section's parameters, resolved from the recipe's values and the user's ``merged``
    over them (``user``: the user's own overrides), each checked against its Param."""
    out = {kind: spec.resolve(merged.get(kind, {}), f"-o {kind}") for kind, spec in specs.items()}
    for section, section_params in (("train", TRAIN_PARAMS), ("cache", CACHE_PARAMS), ("robustness", ROBUSTNESS_PARAMS),
                                    ("report", REPORT_PARAMS)):
        out[section] = Spec(section, dict, "", section_params).resolve(merged.get(section, {}), f"-o {section}")
    if meta.upstream == "finetune":
        out["upstream"]["finetune"] = True
    if meta.spec_augment is not None and "spec_augment" not in user.get("upstream", {}):
        out["upstream"]["spec_augment"] = meta.spec_augment
    return out


def _perturbation_settings(config: dict, thresholds: dict, perturbations: Sequence[str], overrides: Mapping,
                           reg: Registry) -> None:
    """Test-time conditions and training augmentation into ``config``, canonically spelt; absent
    when unused, so that a run without them keeps its id (and its resumable job files)."""
    train = config["train"]
    if train["augment"]:
        train["augment"] = perturb.parse(train["augment"], "-o train.augment", reg).key
        if "augment" in config["overrides"].get("train", {}):  # one spelling, one run id
            config["overrides"]["train"]["augment"] = train["augment"]
    elif "augment_copies" in overrides.get("train", {}):
        raise SerbenchError("-o train.augment_copies: set -o train.augment=NAME:k=v too (augmentation is off)")
    else:
        del train["augment"], train["augment_copies"]
    if perturbations:
        config["perturb"] = [c.record(reg) for c in perturb.parse_all(perturbations, "--perturb", reg)]
        config["robustness"] = thresholds
    elif overrides.get("robustness"):
        raise SerbenchError(f"-o robustness.{next(iter(overrides['robustness']))}: the robustness rule applies to "
                            "--perturb conditions; give at least one (serbench list perturbations)")


def _effective(overrides: Mapping[str, Mapping[str, Any]], settings_of) -> dict[str, dict[str, Any]]:
    """The overrides that change the run, each as its parameter's type: ``-o train.lr=<default>``
    (or the recipe's value) is dropped and ``train.lr=1e-3`` and ``0.001`` (or ``max_epochs=2``
    and ``2.0``) become one value, so one run has one id however its command was spelt. The
    executor's options are kept as given (where the jobs run is not part of the run's id)."""
    full = settings_of(overrides)
    kept: dict[str, dict[str, Any]] = {}
    for section, values in overrides.items():
        for name in values:
            if section == "executor":
                kept.setdefault(section, {})[name] = values[name]
                continue
            rest = {s: {k: v for k, v in vs.items() if (s, k) != (section, name)} for s, vs in overrides.items()}
            if settings_of(rest) != full:
                kept.setdefault(section, {})[name] = full[section][name]
    return kept


def _pooling_spec(reg: Registry, pooling: str | None, meta: DownstreamMeta, paper: Recipe | None, downstream: str) -> Spec:
    """The pooling plugin; a method with its own pooling refuses ``--pooling``."""
    own = meta.own_pooling
    if not own:
        return reg.get("pooling", pooling or (paper and paper.pooling) or meta.default_pooling or "mean")
    if pooling is not None:
        raise SerbenchError(f"--pooling {pooling}: downstream {downstream} pools with its own {own}; "
                            "it takes no pooling plugin (see serbench list downstreams " + downstream + ")")

    def refuse(*_args, **_kwargs):
        raise SerbenchError(f"downstream {downstream} pools with its own {own}")

    return Spec(name=f"own: {own}", factory=refuse, summary=f"{downstream}'s own pooling")


def _test_split(spec: Spec, overrides: Mapping) -> str:
    """What the protocol scores on under the user's options (``Development``, ``test session``)."""
    return spec.meta.test_split.format(**spec.resolve(overrides.get("protocol", {}), "-o protocol"))


def describe_recipe(config: Mapping) -> str:
    """One log line: the recipe in force and what it set, then each stage's recipe."""
    line = recipes.describe(config)
    if config["recipe"].get("stages"):
        line += "; stages: " + stage_recipes.describe(config["recipe"]["stages"])
    return line
