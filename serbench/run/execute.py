"""Execute a plan: prepare (every check, then the run directory), extract features into the
cache, dispatch the pending (fold, seed) jobs to the plan's executor, then summarise from disk.

A job is data (:class:`~serbench.report.results.Job`): any process that can read the run directory
and the feature cache rebuilds what the job needs (:func:`work_unit`, what ``serbench job``
and every executor's worker call). With an executor that runs several units at once, frozen
features are extracted first in shards (:class:`Shard`), one per worker, each into the cache,
so N workers extract N times faster; then the jobs read them from the cache batch by batch
(:mod:`serbench.run.stored_features`).
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from serbench.api import full_training
from serbench.api.atomic import write_json
from serbench.api.audio import check_readable, load_utterance
from serbench.api.errors import ContractError, SerbenchError
from serbench.api.progress import Reporter
from serbench.api.protocol import Protocol, Utterance
from serbench.api.textfiles import read_json
from serbench.api.user_config import cache_dir
from serbench.api.work import Job, Shard, WorkUnit
from serbench.report import claims, robustness
from serbench.report.metrics import METRICS
from serbench.report.results import Result, comparability, finish, job_done, job_problem, read_records
from serbench.report.rundir import RunDir
from serbench.run import dimensional_task, needs, perturbed_features, precision
from serbench.run.cache import CacheKey, FeatureCache, human_bytes, utterance_hash
from serbench.run.features import (
    CacheStats,
    estimate_bytes,
    extract,
    keep_on_device,
    num_samples,
    select_layers,
)
from serbench.run.finetune import UPSTREAM_PARAMS
from serbench.run.job import Workspace, check_build, claim_and_run
from serbench.run.plan import Plan, check_config_file, describe_recipe, identity, load_plan, plan
from serbench.run.request import RunRequest
from serbench.run.stored_features import release_maps
from serbench.run.vad import speech_frames


def prepare(the_plan: Plan, run_dir: Path) -> Workspace:
    """Everything that can fail on bad input (the corpus and its audio headers, the method's
    needs, layers, the model and loss a job will build, stage declarations), before the run
    directory exists."""
    config, specs = the_plan.config, the_plan.specs
    protocol = the_plan.protocol()
    protocol.check_usable()
    used = sorted({i for f in protocol.folds for i in f.train + f.dev + f.test})
    check_readable(protocol.utterances[i] for i in used)
    wanted = needs.declared(specs, config)
    needs.check(protocol, wanted, specs)
    vad_level = needs.vad_aggressiveness(specs, config) if "vad" in wanted else None
    upstream_params = dict(config["upstream"]["params"])
    host = {p.name: upstream_params.pop(p.name, p.default) for p in UPSTREAM_PARAMS}  # a default may be left out
    upstream = specs["upstream"].build(**upstream_params)
    precision.check(host["precision"], the_plan.device, upstream, specs["upstream"].name)
    if host["finetune"] and host["precision"] != precision.DEFAULT:
        raise SerbenchError(f"-o upstream.precision={host['precision']} sets frozen extraction's precision; a fine-tuned "
                            "encoder runs in the training precision: use -o train.bf16=true (or false) instead")
    layers = select_layers(host["layers"], upstream.num_layers, specs["upstream"].name)
    frozen_frontend = host["finetune"] and host["freeze_frontend"] and host["cache_frontend"]
    dimensions = (dimensional_task.dimensions_of(protocol, used, specs["downstream"])
                  if dimensional_task.task_of(config) == "dimensional" else ())
    ws = Workspace(the_plan, run_dir, protocol, upstream, upstream_params, host, layers, vad_level,
                   frontend_cache={} if frozen_frontend else None, dimensions=dimensions)
    check_build(ws)
    return ws


def _unversioned(config: Mapping) -> str:
    """A run's identity with its plugins' versions left out."""
    same = identity(config)
    return json.dumps({k: ({kk: vv for kk, vv in v.items() if kk != "version"} if isinstance(v, dict) else v)
                       for k, v in same.items()}, sort_keys=True)


def _earlier_versions(run_dir: Path, config: Mapping) -> list[str]:
    """Log lines naming sibling runs of the same command made with other plugin versions or on
    other corpus content: their job files are not resumed (the run id holds both), and the user
    should know why."""
    here, lines = _unversioned(config), []
    for other_config in sorted(run_dir.parent.glob("*/config.json")):
        if other_config.parent == run_dir:
            continue
        try:
            other = json.loads(other_config.read_text())
            if _unversioned(other) != here:
                continue
        except (OSError, ValueError, KeyError, AttributeError, TypeError):
            continue
        changed = [f"{kind} {config[kind]['name']} {other[kind].get('version', '1')} -> {config[kind]['version']}"
                   for kind in ("upstream", "downstream", "pooling", "loss", "protocol")
                   if other[kind].get("version", "1") != config[kind]["version"]]
        if changed:
            lines.append(f"not resumed: {other_config.parent.name} ran this command with other plugin versions "
                         f"({'; '.join(changed)}); it is kept as it was")
        else:
            lines.append(f"not resumed: {other_config.parent.name} ran this command on other corpus content (ids, "
                         f"labels, side information or folds; last read from {other['protocol'].get('data')}); "
                         "it is kept as it was")
    return lines


def open_run(ws: Workspace) -> list[Job]:
    """Create or resume the run directory; its jobs."""
    _check_corpus(ws.run_dir, ws.protocol)
    check_config_file(ws.run_dir, ws.plan.config)  # an edited config.json is refused, not written over
    write_json(RunDir(ws.run_dir).config, ws.plan.config)
    jobs = _all_jobs(ws)
    write_json(RunDir(ws.run_dir).jobs_list, [job._asdict() for job in jobs])  # serbench status
    return jobs


def load_inputs(ws: Workspace, jobs: Sequence[Job], reporter: Reporter,
                shard: Shard | None = None) -> tuple[Workspace, CacheStats]:
    """Frozen mode: ``ws`` with the features (and voice-activity masks, and perturbed copies) of
    every utterance ``jobs`` touch, from the cache or extracted into it (only ``shard``'s part
    of the features when one is given); ``ws`` itself is unchanged. Fine-tuning: ``ws`` as it is."""
    if ws.tuning:
        return ws, CacheStats()
    wanted = {job.fold for job in jobs}
    needed = sorted({i for f in ws.protocol.folds if f.name in wanted for i in f.train + f.dev + f.test})
    if shard is not None:
        needed = needed[shard.index::shard.count]
    features, stats = _features(ws, [ws.protocol.utterances[i] for i in needed], reporter)
    features = release_maps(features)  # read batch by batch: resident memory does not grow with the corpus
    masks = _vad(ws, features, reporter) if ws.vad_level is not None else None
    loaded = replace(ws, features=keep_on_device(features, ws.plan.device), vad_masks=masks)
    if shard is None:  # perturbed copies (--perturb, train.augment): each job's own folds
        perturbed, augmented = perturbed_features.load(
            loaded, jobs, _cache_key(ws) if ws.plan.config["cache"]["enabled"] else None, reporter)
        loaded = replace(loaded, perturbed=perturbed, augmented=augmented)
    return loaded, stats


def _cache_key(ws: Workspace) -> CacheKey:
    return CacheKey(ws.plan.specs["upstream"].name, ws.upstream.fingerprint(), ws.layers,
                    ws.plan.config["cache"]["dtype"], ws.upstream.dim, ws.upstream.frame_rate,
                    ws.plan.specs["upstream"].version,
                    precision=precision.cache_field(precision.in_force(ws), ws.plan.device))


def _cache(ws: Workspace) -> FeatureCache | None:
    return FeatureCache(cache_dir(), _cache_key(ws)) if ws.plan.config["cache"]["enabled"] else None


def feature_footprint(ws: Workspace) -> tuple[str | None, frozenset[str], int]:
    """What the run's frozen features take in the cache: (cache folder, utterance ids, estimated
    bytes); (None, empty, 0) when it keeps none (fine-tuning, or the cache disabled)."""
    if ws.tuning or not ws.plan.config["cache"]["enabled"]:
        return None, frozenset(), 0
    ids = frozenset(i for f in ws.protocol.folds for i in f.train + f.dev + f.test)
    samples = [num_samples(ws.protocol.utterances[i]) for i in sorted(ids)]
    size = estimate_bytes(samples, ws.upstream, len(ws.layers), np.dtype(ws.plan.config["cache"]["dtype"]).itemsize)
    return _cache_key(ws).folder_name, ids, size


def _features(ws: Workspace, utterances: list, reporter: Reporter):
    config = ws.plan.config
    name = ws.plan.specs["upstream"].name
    with reporter.task(f"features ({name})", len(utterances)) as advance:
        features, stats = extract(ws.upstream, utterances, ws.plan.device, ws.layers, _cache(ws),
                                  config["cache"]["budget_gb"] * 1e9, config["cache"]["dtype"], on_batch=advance, name=name,
                                  precision=precision.in_force(ws))
    reporter.info(f"features: {len(features)} utterances (cache: {stats.hits} hits, {stats.misses} misses)")
    return features, stats


def _vad(ws: Workspace, features: Mapping[str, np.ndarray], reporter: Reporter) -> dict[str, np.ndarray]:
    """Speech masks aligned to every utterance's feature frames, kept in the cache beside the
    features (keyed by the audio's bytes, the aggressiveness, the frame rate and the frame count)."""
    cache = _cache(ws)
    folder = cache.dir / f"vad-{ws.vad_level}" if cache else None
    masks = {}
    with reporter.task("voice activity (webrtcvad)", len(features)) as advance:
        for uid, array in features.items():
            path = folder / f"{utterance_hash(ws.protocol.utterances[uid])}-{array.shape[1]}.npy" if folder else None
            mask = _read_mask(path, array.shape[1])
            if mask is None:
                mask = speech_frames(load_utterance(ws.protocol.utterances[uid]), ws.upstream.frame_rate,
                                     array.shape[1], ws.vad_level)
                if path is not None:
                    FeatureCache.write_array(path, mask)
            masks[uid] = mask
            advance(1)
    empty = sum(not m.any() for m in masks.values())
    reporter.info(f"voice activity: {empty} of {len(masks)} utterances have no speech frame (they use all frames)")
    return masks


def _read_mask(path: Path | None, frames: int) -> np.ndarray | None:
    if path is None or not path.exists():
        return None
    mask, _ = FeatureCache.read_array(path)  # checksummed like every cache entry
    if mask is None:
        return None
    return mask if mask.dtype == bool and mask.shape == (frames,) else None


def work_through(ws: Workspace, jobs: Sequence[Job], reporter: Reporter) -> dict[Job, str]:
    """Run ``jobs`` in this process, each once it can be claimed; wait for those another process
    holds (taking over a claim whose owner died). Returns the jobs that raised, with their errors:
    the others still run, unless a plugin broke its contract (every job would fail alike)."""
    failed: dict[Job, str] = {}
    with reporter.task("jobs (fold x seed)", len(jobs)) as advance:
        todo, waiting = list(jobs), False
        while todo:
            held = []
            for job in todo:
                try:
                    state = "done" if job_done(ws.run_dir, *job) else claim_and_run(ws, job, reporter)
                except Exception as exc:  # recorded in failed/; the other jobs go on
                    failed[job] = f"{type(exc).__name__}: {exc}"
                    reporter.info(f"{job} failed: {failed[job]} (traceback: {RunDir(ws.run_dir).failure(job)})")
                    if isinstance(exc, ContractError):
                        return failed
                    state = "failed"
                if state == "held":
                    held.append(job)
                else:
                    advance(1)
            if held and not waiting:
                reporter.info(f"{len(held)} jobs are claimed by other processes: waiting for them "
                              "(a claim whose owner dies is taken over)")
                waiting = True
            if held:
                time.sleep(claims.POLL)
            todo = held
    return failed


class WorkspaceCache:
    """The workspace of the run directory a worker ran its last unit of, kept for its next one
    (rebuilding it means reading the corpus and building the encoder again). Owned by whoever
    runs units one after another and handed in explicitly (``unit(cache)``; an executor's
    worker process keeps one for its lifetime: ``WorkUnit.cached_in``); holds one run
    directory at a time."""

    def __init__(self) -> None:
        self._key: tuple[str, str] | None = None
        self._workspace: Workspace | None = None

    def get(self, run_dir: Path, device: str) -> Workspace:
        key = (str(run_dir.resolve()), device)
        if self._key != key or self._workspace is None:
            self._key, self._workspace = None, None  # the previous run's workspace goes first
            self._workspace, self._key = prepare(load_plan(run_dir, device), run_dir), key
        return self._workspace


def work_unit(run_dir: str | Path, unit: Job | Shard, device: str = "auto", quiet: bool = True,
              cache: WorkspaceCache | None = None) -> str:
    """Run one unit of a run directory in this process: a :class:`Job` (``(fold, seed)``) or a
    :class:`Shard` of feature extraction. What ``serbench job`` and every executor's worker
    call; raises on failure (a job's traceback is also kept in ``failed/``). The workspace is
    rebuilt from the run directory, or taken from ``cache`` (a worker's own, reused between
    its units)."""
    run_dir = Path(run_dir)
    ws = (cache or WorkspaceCache()).get(run_dir, device)
    reporter = Reporter(quiet=quiet)
    reporter.log_to(RunDir(run_dir).log)
    try:
        if isinstance(unit, Shard):
            load_inputs(ws, _all_jobs(ws), reporter, unit)
            return f"{unit}: done"
        job = Job(str(unit[0]), int(unit[1]))
        if job not in _all_jobs(ws):
            raise SerbenchError(f"{run_dir}: no job {job} (folds {', '.join(f.name for f in ws.protocol.folds)}; "
                                f"seeds {ws.plan.config['seeds']})")
        if job_done(run_dir, *job):
            return f"{job}: done before"
        _stop_if_a_contract_broke(run_dir)
        loaded, _ = load_inputs(ws, [job], reporter)
        state = claim_and_run(loaded, job, reporter)  # raises the job's own error (recorded in failed/)
        return f"{job}: {'done' if state == 'done' else 'held by another process'}"
    finally:
        reporter.close()


def _stop_if_a_contract_broke(run_dir: Path) -> None:
    """A worker does not start a job once another job of this invocation (failures newer than
    its ``jobs.json``, which every ``serbench run`` rewrites) broke a plugin's contract: every
    job would fail the same way. In process, :func:`work_through` stops the same way."""
    try:
        started = RunDir(run_dir).jobs_list.stat().st_mtime
    except OSError:
        return
    for path in sorted(RunDir(run_dir).failed.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if str(record.get("error", "")).startswith("ContractError:") and record.get("time", 0) >= started:
            raise ContractError(f"not started: fold {record.get('fold')} seed {record.get('seed')} broke a plugin's "
                                f"contract ({record['error'].removeprefix('ContractError: ')})")


def _all_jobs(ws: Workspace) -> list[Job]:
    return [Job(fold.name, seed) for fold in ws.protocol.folds for seed in ws.plan.config["seeds"]]


def _missing_features(ws: Workspace, jobs: Sequence[Job]) -> list[Utterance]:
    """The utterances of ``jobs`` that have no cache entry (none without a cache or when fine-tuning)."""
    cache = None if ws.tuning else _cache(ws)
    if cache is None:
        return []
    wanted = {job.fold for job in jobs}
    needed = sorted({i for f in ws.protocol.folds if f.name in wanted for i in f.train + f.dev + f.test})
    return [ws.protocol.utterances[i] for i in needed if not cache.path(utterance_hash(ws.protocol.utterances[i])).exists()]


def _check_budget(ws: Workspace, jobs: Sequence[Job]) -> None:
    """Refuse, before the run directory exists, a run whose new features would grow the cache
    past ``cache.budget_gb`` (extraction checks it again, as it goes, for shards and workers):
    the estimate needs only the audio headers and which utterances the cache lacks."""
    missing = _missing_features(ws, jobs)
    if not missing:
        return
    dtype, budget = ws.plan.config["cache"]["dtype"], ws.plan.config["cache"]["budget_gb"] * 1e9
    size = estimate_bytes([num_samples(u) for u in missing], ws.upstream, len(ws.layers), np.dtype(dtype).itemsize)
    if size > budget:
        raise SerbenchError(f"the feature cache would grow by about {human_bytes(size)} ({len(missing)} utterances, "
                            f"{len(ws.layers)} layers x {ws.upstream.dim} dims, {dtype}), over the budget of "
                            f"{human_bytes(budget)}: keep fewer layers with -o upstream.layers=[...], or raise "
                            "-o cache.budget_gb=N")


def dispatch(ws: Workspace, executor, pending: Sequence[Job], reporter: Reporter) -> dict:
    """Through an executor that runs several units at once: extraction shards first (when
    features are missing from the cache), then the jobs; the units that failed, with their errors."""
    device = str(ws.plan.device)
    missing = len(_missing_features(ws, pending))
    if missing:
        count = max(1, min(executor.slots(len(pending)), missing))
        reporter.info(f"features: {missing} utterances to extract, in {count} shards ({type(executor).__name__})")
        failed = _map(executor, ws.run_dir, [Shard(k, count) for k in range(count)], device, reporter)
        if failed:
            first = next(iter(failed.items()))
            raise SerbenchError(f"{ws.run_dir}: {len(failed)} feature extraction shards failed ({first[0]}: {first[1]})")
    elif not ws.tuning and not ws.plan.config["cache"]["enabled"]:
        reporter.info("cache.enabled=false: every job extracts its own features")
    failed = _map(executor, ws.run_dir, list(pending), device, reporter)
    _wait_for_held(ws.run_dir, pending)
    return failed


def _map(executor, run_dir: Path, units: Sequence[Job | Shard], device: str, reporter: Reporter) -> dict:
    """The executor runs each unit handed in as a :class:`WorkUnit` (:func:`work_unit` and its
    data); the units that failed, with their errors."""
    work = [WorkUnit(str(run_dir), unit, device, work_unit, WorkspaceCache) for unit in units]
    return {w.unit: error for w, error in executor.map(run_dir, work, device, reporter).items()}


def _wait_for_held(run_dir: Path, jobs: Sequence[Job]) -> None:
    """Wait while other processes (another serbench run on this directory) hold claims."""
    while True:
        held = [job for job in jobs if not job_done(run_dir, *job) and RunDir(run_dir).claim(job).exists()
                and not claims.is_stale(RunDir(run_dir).claim(job))]
        if not held:
            return
        time.sleep(claims.POLL)


def runs_folder(out: str | Path) -> Path:
    """``--out``, the folder that holds run directories; an empty ``--out ""`` is refused (the
    OS reads it as the current directory, where runs would land unasked), as is a file."""
    if isinstance(out, str) and not out.strip():
        raise SerbenchError(f"--out {out!r}: an empty path; give the folder for run directories (default: runs)")
    if Path(out).exists() and not Path(out).is_dir():
        raise SerbenchError(f"--out {out}: is a file, expected a folder for run directories")
    return Path(out)


def execute(the_plan: Plan, out: str | Path = "runs", reporter: Reporter | None = None,
            only: Sequence[Job] | None = None, summarise: bool = True,
            in_process: bool = False) -> Result | None:
    """Run every (fold, seed) job that has no result yet (or those of ``only``) through the
    plan's executor (``in_process``: in this process only, as ``serbench job`` does), then
    summarise from disk (unless ``summarise`` is false)."""
    started = time.perf_counter()
    reporter = reporter or Reporter(quiet=True)
    try:  # the reporter's handlers are removed however this ends (a refusal included)
        run_dir = runs_folder(out) / the_plan.run_id
        ws = prepare(the_plan, run_dir)
        # every refusal before the run directory is created: a refused run leaves nothing behind
        jobs = _all_jobs(ws)
        wanted = None if only is None else [Job(str(f), int(s)) for f, s in only]
        unknown = [job for job in (wanted or ()) if job not in jobs]
        if unknown:
            raise SerbenchError(f"{run_dir}: no job {unknown[0]} (folds {', '.join(dict.fromkeys(j.fold for j in jobs))}; "
                                f"seeds {the_plan.config['seeds']})")
        pending = [job for job in jobs if not job_done(run_dir, *job) and (wanted is None or job in wanted)]
        executor = None if in_process or not pending else the_plan.executor.build(**the_plan.config["executor"]["params"])
        _check_budget(ws, pending)
        reporter.log_to(RunDir(run_dir).log)
        jobs = open_run(ws)
        reporter.info(f"run {the_plan.run_id} -> {run_dir}")
        for line in _earlier_versions(run_dir, the_plan.config):
            reporter.info(line)
        reporter.info(describe_recipe(the_plan.config))
        if not ws.tuning:
            reporter.info(f"extraction precision: {precision.in_force(ws)} on {the_plan.device} "
                          f"(-o upstream.precision={ws.host['precision']})")
        differences = ws.protocol.published_differences()
        if differences:
            reporter.info(f"WARNING: this copy of the corpus differs from {ws.protocol.name} as published "
                          f"({'; '.join(differences[:3])}{'; ...' if len(differences) > 3 else ''}): the result is "
                          "marked and not put beside papers' numbers (serbench data check lists every difference)")
        if len(pending) < len(jobs):
            reporter.info(f"resuming: {len(jobs) - len(pending)} of {len(jobs)} jobs already done")
        stats, features_s, failed = CacheStats(), 0.0, {}
        with reporter.session():
            if pending:
                if executor is None or getattr(executor, "in_process", False):
                    t0 = time.perf_counter()
                    loaded, stats = load_inputs(ws, pending, reporter)
                    features_s = time.perf_counter() - t0
                    failed = work_through(loaded, pending, reporter)
                else:
                    failed = dispatch(ws, executor, pending, reporter)
        if failed:
            ran = {job: error for job, error in failed.items() if "not started:" not in str(error)} or failed
            first, error = next(iter(ran.items()))
            where = RunDir(run_dir).failure(first) if isinstance(first, Job) else RunDir(run_dir).log
            unstarted = sum(job not in ran and not job_done(run_dir, *job) for job in pending)
            stopped = f"; {unstarted} not started (a plugin broke its contract: they would fail alike)" if unstarted else ""
            raise SerbenchError(f"{run_dir}: {len(ran)} jobs failed (first: {first}: {error}; traceback: {where}){stopped}; "
                                "the others are kept: fix the cause and rerun to compute only those")
        if not summarise:
            done = sum(job_done(run_dir, *job) for job in jobs)
            reporter.info(f"{done} of {len(jobs)} jobs done" + ("" if done < len(jobs) else f"; serbench finish {run_dir}"))
            return None
        return _summarise(ws, jobs, stats, started, features_s, reporter)
    finally:
        reporter.close()


def _summarise(ws: Workspace, jobs: list[Job], stats: CacheStats, started: float, features_s: float,
               reporter: Reporter) -> Result:
    config, specs, run_dir = ws.plan.config, ws.plan.specs, ws.run_dir
    missing = [job for job in jobs if not job_done(run_dir, *job)]
    if missing:
        why = job_problem(run_dir, *missing[0])  # an edited or truncated job file is named
        why = "" if why == "not done" else f": {why}"
        raise SerbenchError(f"{run_dir}: {len(missing)} of {len(jobs)} jobs not done (first: {missing[0]}{why}); "
                            "run them (serbench run, or serbench job) first")
    no_speech = None
    if ws.vad_level is not None:  # utterances without a speech frame, over every job's
        no_speech = len(set().union(*(r.get("vad_no_speech", []) for r in read_records(run_dir, jobs))))
    result = finish(
        run_dir, jobs, ws.protocol.classes, ws.protocol.main_metric, speakers_known=ws.protocol.speakers_known,
        report=config.get("report"),
        dimensions=ws.dimensions, speakers=ws.protocol.speaker_record(),
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
        comparability=comparability(config["protocol"]["name"], ws.protocol.digest(), ws.protocol.classes,
                                    specs["protocol"].meta.test_split.format(**config["protocol"]["params"]) or None,
                                    corpora=ws.protocol.corpora, **dimensional_task.comparability_parts(ws.dimensions),
                                    precision="" if ws.tuning else precision.in_force(ws)),
        upstream_fingerprint=ws.upstream.fingerprint(),
        environment={
            "python": platform.python_version(),
            "torch": torch.__version__,
            "device": str(ws.plan.device),
            "data": config["protocol"]["data"],
            "platform": platform.platform(),
        },
        cache=stats.__dict__,
        annotations=({"vad_no_speech": no_speech} if ws.vad_level is not None else {})
        | ({"corpus_differs": differs} if (differs := ws.protocol.published_differences()) else {})
        | ({"protocol": ws.protocol.notes} if ws.protocol.notes else {})
        | full_training.annotation(config["train"])
        | ({} if ws.tuning else {"extraction_precision": precision.in_force(ws)}),
        timing={"total_s": round(time.perf_counter() - started, 3), "features_s": round(features_s, 3)},
        **({"robustness": robustness.section(run_dir, jobs, ws.protocol.classes, ws.protocol.speakers_known, config)}
           if config.get("perturb") else {}),
    )
    data = result.data
    if ws.dimensions:
        reporter.info("done: " + dimensional_task.shown({m: e["mean"] for m, e in data["summary"].items()}, ws.dimensions))
    else:
        reporter.info("done: " + ", ".join(f"{m} {data['summary'][m]['mean'] * 100:.2f}" for m in METRICS))
    return result


def _check_corpus(run_dir: Path, protocol: Protocol) -> None:
    """A run directory is resumed only on the audio it was started on (the run id holds the
    corpus's ids, labels and folds, not its sound): the content hashes the feature cache
    computes anyway; a copy of the corpus elsewhere is the same corpus."""
    record = RunDir(run_dir).corpus
    digest = protocol.digest()
    audio = {uid: utterance_hash(u)[:16] for uid, u in sorted(protocol.utterances.items())}
    previous = read_json(record, " (a damaged run directory: use another --out)") if record.exists() else None
    if previous is not None:
        changed = [uid for uid, h in previous.get("audio", audio).items() if audio.get(uid) != h]
        if changed:
            raise SerbenchError(f"{run_dir}: {len(changed)} audio files changed since this run started (first: "
                                f"{protocol.utterances[changed[0]].path}); use another --out or remove that run directory")
        if "audio" in previous:
            return
    write_json(record, {"digest": digest, "utterances": len(protocol.utterances), "folds": len(protocol.folds),
                        "audio": audio})


def run(request: RunRequest, out: str | Path = "runs", quiet: bool = True) -> Result:
    """Run ``request`` (a downstream on an upstream under a protocol); returns the written result.

    ``RunRequest("fbank", "superb", protocol="synthetic", overrides=["train.lr=1e-4"])``: the
    overrides are also ``{"train": {"lr": 1e-4}}``; ``recipe`` is ``"paper"`` (the default for a
    method that declares one) or ``"shared"``; ``executor`` names where the jobs run
    (``-o executor.workers=2`` style keys go in the overrides)."""
    return execute(plan(request), out, Reporter(quiet=quiet))


def run_benchmark(*names: str, out: str | Path = "runs", quiet: bool = True, **fields) -> Result:
    """``serbench.run_benchmark(upstream="fbank", downstream="superb", protocol="synthetic", ...)``:
    :func:`run` with the request's fields given as keywords (the documented one-liner)."""
    return run(RunRequest(*names, **fields), out=out, quiet=quiet)
