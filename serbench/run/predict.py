"""``serbench predict RUN_DIR AUDIO...``: a finished run's saved models on new audio.

Each saved (fold, seed) model (:mod:`serbench.run.saved_model`) is rebuilt from the registry by
name, checked against the versions and encoder fingerprint it was trained with, and fed
features made the way the run made them: the same upstream and kept layers through
:func:`serbench.run.features.extract` (16 kHz mono, the run's feature precision, the run's
``max_seconds`` truncation, webrtcvad masks when a plugin needs them). The probabilities of
a file the run tested are therefore the run's own, to float tolerance.

Choices of this command (named, not a paper's): the models' probabilities are averaged with
equal weight (``--fold`` / ``--seed`` keep one or some); a recording longer than
``--max-seconds`` (default 30 s) is split into speech segments found by webrtcvad (at
aggressiveness ``SEGMENT_AGGRESSIVENESS``; pauses of
at least ``MIN_PAUSE`` seconds split, stretches shorter than ``MIN_SEGMENT`` are dropped, a
stretch longer than ``--max-seconds`` is cut into equal parts; a recording without speech is
cut into equal parts of at most ``--max-seconds``), and the file's probabilities are the
segments' averaged weighted by their duration. Features are extracted afresh (the feature
cache is not read: new audio would miss it anyway). A downstream that needs side information
a bare recording lacks (gender, transcript) is refused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from serbench.api.atomic import write_text
from serbench.api.audio import audio_info, load_audio
from serbench.api.batch import frame_mask
from serbench.api.downstream import DownstreamContext
from serbench.api.errors import SerbenchError
from serbench.api.protocol import Utterance
from serbench.api.work import Job
from serbench.report.rundir import RunDir
from serbench.run import precision, saved_model
from serbench.run.features import extract
from serbench.run.registry import Registry, registry
from serbench.run.vad import speech_frames

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aif", ".aiff")  # what soundfile reads
VAD_STEP = 0.01  # seconds per webrtcvad decision (serbench.run.vad.STEP at 16 kHz)
MIN_PAUSE = 0.3  # a pause this long between speech stretches splits a long recording
MIN_SEGMENT = 0.25  # speech stretches shorter than this are dropped
SEGMENT_AGGRESSIVENESS = 1  # webrtcvad's for splitting: lenient, so quiet speech stays in (the run's own VAD setting is for its masks)
UNSUPPORTED_NEEDS = ("gender", "transcript")
BATCH = 16


@dataclass(frozen=True)
class Segment:
    """A stretch of one input file (``start``/``end`` None: the whole file)."""

    file: Path
    start: float | None
    end: float | None
    seconds: float

    @property
    def id(self) -> str:
        return f"{self.file}" if self.start is None else f"{self.file}@{self.start:.2f}-{self.end:.2f}"


@dataclass
class LoadedModel:
    description: dict
    model: torch.nn.Module


def audio_files(inputs: Sequence[str]) -> list[Path]:
    """Each input file, and every audio file under each input folder (sorted); a missing input is refused."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise SerbenchError(f"{path}: folder holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise SerbenchError(f"{path}: no such audio file or folder")
    return files


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index pairs of the True stretches of ``mask``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _even_parts(start: float, end: float, longest: float) -> list[tuple[float, float]]:
    parts = max(1, math.ceil((end - start) / longest - 1e-9))
    step = (end - start) / parts
    return [(start + k * step, start + (k + 1) * step) for k in range(parts)]


def segments(file: Path, max_seconds: float, aggressiveness: int = SEGMENT_AGGRESSIVENESS) -> list[Segment]:
    """The whole file when it lasts at most ``max_seconds`` (0: always whole), else its speech
    segments (see the module docstring)."""
    info = audio_info(file)
    seconds = info.frames / info.samplerate
    if max_seconds <= 0 or seconds <= max_seconds:
        return [Segment(file, None, None, seconds)]
    wav = load_audio(file)
    speech = speech_frames(wav, 1 / VAD_STEP, wav.size // 160, aggressiveness)
    stretches = []
    for first, stop in _runs(speech):
        if stretches and (first - stretches[-1][1]) * VAD_STEP < MIN_PAUSE:
            stretches[-1] = (stretches[-1][0], stop)
        else:
            stretches.append((first, stop))
    spans = [(a * VAD_STEP, b * VAD_STEP) for a, b in stretches if (b - a) * VAD_STEP >= MIN_SEGMENT]
    if not spans:
        spans = [(0.0, seconds)]
    out = []
    for start, end in spans:
        for a, b in _even_parts(start, min(end, seconds), max_seconds):
            out.append(Segment(file, round(a, 4), round(b, 4), b - a))
    return out


def _check_run(run_dir: Path) -> dict:
    from serbench.api.textfiles import read_json

    if not run_dir.is_dir():
        raise SerbenchError(f"{run_dir}: not a run directory (no such folder)")
    try:
        config = read_json(RunDir(run_dir).config, " (a damaged run directory)")
    except FileNotFoundError:
        raise SerbenchError(f"{run_dir}: not a run directory (no config.json)") from None
    if not RunDir(run_dir).jobs_list.is_file():
        raise SerbenchError(f"{run_dir}: not a run directory (no jobs.json)")
    return config


def choose_jobs(run_dir: Path, config: dict, fold: str | None, seed: int | None) -> list[Job]:
    """The saved models to average: all, or those of ``fold`` and/or ``seed``."""
    saved = saved_model.saved_jobs(run_dir)
    if not saved:
        if config.get("upstream", {}).get("params", {}).get("finetune"):
            raise SerbenchError(f"{run_dir}: a fine-tuning run: its models are not saved (the encoder's weights per "
                                "fold and seed), so serbench predict cannot use it")
        raise SerbenchError(f"{run_dir}: no saved models in {RunDir(run_dir).models} (a run made before serbench saved "
                            "models, or no job finished yet): rerun it to save them")
    chosen = [job for job in saved if (fold is None or job.fold == fold) and (seed is None or job.seed == seed)]
    if not chosen:
        folds = ", ".join(sorted({f for f, _ in saved}))
        seeds = ", ".join(str(s) for s in sorted({s for _, s in saved}))
        raise SerbenchError(f"--fold {fold} --seed {seed}: no saved model of {run_dir} matches (folds: {folds}; seeds: {seeds})")
    return chosen


def _spec(reg: Registry, kind: str, part: dict, where: Path):
    spec = reg.get(kind, part["name"])
    if str(spec.version) != str(part["version"]):
        raise SerbenchError(f"{where}: {kind} {part['name']} was version {part['version']} when the model was trained "
                            f"and is {spec.version} now: its predictions would not be the run's")
    return spec


def _needs(spec, params: dict) -> tuple[str, ...]:
    needs = spec.meta.needs
    return tuple(needs(params) if callable(needs) else needs)


def load_model(run_dir: Path, fold: str, seed: int, reg: Registry, upstream) -> LoadedModel:
    """One saved model, rebuilt through its plugins and loaded with its weights."""
    description, state = saved_model.load(run_dir, fold, seed)
    where = RunDir(run_dir).model(Job(fold, seed))[0]
    down = _spec(reg, "downstream", description["downstream"], where)
    own = down.meta.own_pooling  # a method that pools by itself (sap_gap): no pooling plugin to rebuild
    pool = None if own else _spec(reg, "pooling", description["pooling"], where)
    parts = ((down, "downstream"),) + ((pool, "pooling"),) if pool else ((down, "downstream"),)
    lacking = [n for spec, kind in parts for n in _needs(spec, description[kind]["params"]) if n in UNSUPPORTED_NEEDS]
    if lacking:
        raise SerbenchError(f"{where}: downstream {down.name} needs the {lacking[0]} of each utterance, which a bare "
                            "recording does not carry: serbench predict cannot run it")
    pooling_params = description["pooling"]["params"]

    def make_pooling(dim: int):
        if pool is None:
            raise SerbenchError(f"downstream {down.name} pools with its own {own}")
        return pool.build(dim, **pooling_params)

    context = DownstreamContext(
        num_layers=len(description["upstream"]["layers"]), dim=upstream.dim, frame_rate=upstream.frame_rate,
        classes=tuple(description["classes"]), make_pooling=make_pooling,
        train_counts=tuple(description["train_counts"]), loss=description["loss"]["name"])
    torch.manual_seed(seed)  # only initial weights, all replaced by the saved ones
    model = down.build(context, **description["downstream"]["params"])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise SerbenchError(f"{where}: its weights do not fit downstream {down.name} as built today "
                            f"({str(exc).splitlines()[0]})") from None
    return LoadedModel(description, model.eval())


def _batch(features: dict, ids: list[str], vad: dict | None, max_frames: int) -> dict:
    """What a downstream's forward receives, without labels or side information."""
    arrays = [features[i][:, :max_frames] if max_frames else features[i] for i in ids]
    lengths = torch.tensor([a.shape[1] for a in arrays])
    layers, _, dim = arrays[0].shape
    padded = torch.zeros(len(ids), layers, int(lengths.max()), dim)
    for row, a in enumerate(arrays):
        padded[row, :, : a.shape[1]] = torch.from_numpy(np.asarray(a, dtype=np.float32))
    nothing = [None] * len(ids)
    batch = {"ids": ids, "speakers": nothing, "genders": nothing, "transcripts": nothing,
             "features": padded, "lengths": lengths, "mask": frame_mask(lengths, padded.shape[2])}
    if vad is not None:
        masks = torch.zeros(len(ids), padded.shape[2], dtype=torch.bool)
        for row, i in enumerate(ids):
            mask = vad[i][: padded.shape[2]]
            masks[row, : mask.size] = torch.from_numpy(mask)
        batch["vad"] = masks
    return batch


@torch.no_grad()
def _probabilities(loaded: LoadedModel, features: dict, ids: list[str], vad: dict | None, max_frames: int) -> np.ndarray:
    order = sorted(ids, key=lambda i: -features[i].shape[1])
    out = {}
    name = loaded.description["downstream"]["name"]
    for k in range(0, len(order), BATCH):
        chunk = order[k : k + BATCH]
        try:
            logits = loaded.model(_batch(features, chunk, vad, max_frames))["logits"]
        except KeyError as exc:
            raise SerbenchError(f"downstream {name} reads {exc} from its batch, which serbench predict cannot supply "
                                "for a bare recording") from None
        out.update(zip(chunk, torch.softmax(logits.float(), dim=-1).numpy()))
    return np.stack([out[i] for i in ids])


@dataclass
class Prediction:
    classes: list[str]
    files: pd.DataFrame  # one row per input file
    segments: pd.DataFrame  # one row per segment (a whole file is one segment)
    models: list[Job]
    notes: list[str]


def predict(run_dir: str | Path, inputs: Sequence[str], fold: str | None = None, seed: int | None = None,
            max_seconds: float = 30.0, device: str = "cpu", reg: Registry | None = None) -> Prediction:
    """Class probabilities of every input file (and segment) under a run's saved models."""
    run_dir = Path(run_dir)
    config = _check_run(run_dir)
    jobs = choose_jobs(run_dir, config, fold, seed)
    files = audio_files(inputs)
    reg = reg or registry()
    first, _ = saved_model.load(run_dir, *jobs[0])
    where = RunDir(run_dir).model(jobs[0])[0]
    up = first["upstream"]
    upstream = _spec(reg, "upstream", up, where).build(**up["own_params"])
    if upstream.fingerprint() != up["fingerprint"]:
        raise SerbenchError(f"{where}: upstream {up['name']} now loads weights {upstream.fingerprint()}, the model was "
                            f"trained on {up['fingerprint']}")
    models = [load_model(run_dir, f, s, reg, upstream) for f, s in jobs]
    pre = first["preprocessing"]
    notes = []
    for file in files:
        rate = audio_info(file).samplerate
        if rate != pre["sample_rate"]:
            notes.append(f"{file}: {rate} Hz, resampled to {pre['sample_rate']} Hz (polyphase, as the run's loader does)")
    parts = [s for file in files for s in segments(file, max_seconds)]
    utterances = [Utterance(s.id, s.file, "", "", start=s.start, end=s.end, origin=s.id) for s in parts]
    chosen = ((config.get("upstream") or {}).get("params") or {}).get("precision", precision.DEFAULT)  # the run's
    in_force = precision.check(chosen, torch.device(device), upstream, up["name"])
    features, _ = extract(upstream, utterances, torch.device(device), tuple(up["layers"]), None,
                          dtype=pre["feature_dtype"], name=up["name"], precision=in_force)
    vad = None
    if pre["vad_aggressiveness"] is not None:
        from serbench.api.audio import load_utterance

        vad = {u.id: speech_frames(load_utterance(u), upstream.frame_rate, features[u.id].shape[1],
                                   pre["vad_aggressiveness"]) for u in utterances}
    max_frames = int(pre["max_seconds"] * upstream.frame_rate)
    ids = [u.id for u in utterances]
    probs = np.mean([_probabilities(m, features, ids, vad, max_frames) for m in models], axis=0)
    classes = list(first["classes"])
    seg = pd.DataFrame({"file": [str(s.file) for s in parts], "start": [s.start for s in parts],
                        "end": [s.end for s in parts], "seconds": [s.seconds for s in parts]})
    for k, c in enumerate(classes):
        seg[f"prob_{c}"] = probs[:, k]
    seg["prediction"] = [classes[k] for k in probs.argmax(1)]
    rows = []
    for file in files:
        mine = seg[seg["file"] == str(file)]
        weights = mine["seconds"].to_numpy()
        p = (mine[[f"prob_{c}" for c in classes]].to_numpy() * weights[:, None]).sum(0) / weights.sum()
        rows.append({"file": str(file), "segments": len(mine), **{f"prob_{c}": p[k] for k, c in enumerate(classes)},
                     "prediction": classes[int(p.argmax())]})
    return Prediction(classes, pd.DataFrame(rows), seg, jobs, notes)


def write(prediction: Prediction, folder: Path) -> tuple[Path, Path]:
    """``files.csv`` and ``segments.csv`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "files.csv", folder / "segments.csv"
    write_text(paths[0], prediction.files.to_csv(index=False, float_format="%.6f"))
    write_text(paths[1], prediction.segments.to_csv(index=False, float_format="%.6f"))
    return paths
