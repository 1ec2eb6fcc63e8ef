"""What a run keeps of each (fold, seed) model so that ``serbench predict`` can use it later.

Format ``serbench.model/1``, weights only, no pickled code: per job, in ``RUN_DIR/models/``,

- ``fold-F_seed-S.safetensors``: the downstream model's state dict (its pooling's and, for
  the closed-form heads, the standardisation and linear map), as safetensors tensors;
- ``fold-F_seed-S.json``: everything else needed to rebuild and feed it: the classes (in
  logit order) and the training label counts the head was built with; the upstream's name,
  version, parameters, weights fingerprint (its revision), kept layers, width and frame rate;
  the preprocessing (16 kHz mono, the feature precision the head was trained on, the
  truncation ``max_seconds``, the VAD aggressiveness when a plugin needs speech masks); the
  downstream's, pooling's and loss's names, versions and parameters; what the fit chose
  (closed-form heads: ``C`` and its dev score; gradient heads: the selected epoch); and the
  weights file's sha256, checked when it is read.

Code is never loaded from a run: the plugins are rebuilt from the registry by name and their
versions compared, and tensors are read with safetensors. Fine-tuned runs are not saved
(their encoder's weights would be written per fold and seed: gigabytes for a large encoder).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from serbench.api.atomic import temporary, write_json
from serbench.api.errors import SerbenchError
from serbench.api.textfiles import read_json
from serbench.api.work import Job
from serbench.report.rundir import RunDir

if TYPE_CHECKING:
    from serbench.run.job import Workspace

FORMAT = "serbench.model/1"
SAMPLE_RATE = 16_000


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _plugin(config: dict, kind: str) -> dict:
    return {"name": config[kind]["name"], "version": config[kind]["version"], "params": config[kind]["params"]}


def describe(ws: Workspace, fold, seed: int, upstream, fit: dict) -> dict:
    """The JSON half of a saved model (see the module docstring)."""
    config = ws.plan.config
    return {
        "format": FORMAT,
        "run_id": ws.run_dir.name,
        "fold": fold.name,
        "seed": seed,
        "classes": list(ws.protocol.classes),
        "train_counts": [int(n) for n in ws.protocol.label_counts(fold.train)],
        "upstream": {**_plugin(config, "upstream"), "own_params": ws.upstream_params, "fingerprint": upstream.fingerprint(),
                     "layers": list(ws.layers), "dim": int(upstream.dim), "frame_rate": float(upstream.frame_rate)},
        "preprocessing": {"sample_rate": SAMPLE_RATE, "channels": "mean of channels", "feature_dtype": config["cache"]["dtype"],
                          "max_seconds": float(config["train"]["max_seconds"]), "vad_aggressiveness": ws.vad_level},
        "downstream": _plugin(config, "downstream"),
        "pooling": _plugin(config, "pooling"),
        "loss": _plugin(config, "loss"),
        "fit": fit,
    }


def save(ws: Workspace, fold, seed: int, upstream, model: nn.Module, fit: dict) -> None:
    """Write one job's model: the weights first, then the description naming their sha256 (the
    description's presence marks a complete save)."""
    from safetensors.torch import save_file

    description, weights = RunDir(ws.run_dir).model(Job(fold.name, seed))
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    fd, tmp = temporary(weights)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"format": FORMAT})
        os.replace(tmp, weights)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    write_json(description, {**describe(ws, fold, seed, upstream, fit),
                             "weights": {"file": weights.name, "sha256": _sha256(weights)}})


def saved_jobs(run_dir: Path) -> list[Job]:
    """The job of every saved model of a run, in the order of its ``jobs.json``."""
    listed = read_json(RunDir(run_dir).jobs_list, " (a damaged run directory)")
    jobs = [Job(str(j["fold"]), int(j["seed"])) for j in listed]
    return [job for job in jobs if RunDir(run_dir).model(job)[0].exists()]


def load(run_dir: Path, fold: str, seed: int) -> tuple[dict, dict[str, torch.Tensor]]:
    """(description, state dict) of one saved model; a damaged or foreign file is refused naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    description_file, weights = RunDir(run_dir).model(Job(fold, seed))
    description: Any = read_json(description_file, " (a damaged saved model)")
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise SerbenchError(f"{description_file}: not a serbench saved model (format {FORMAT} expected)")
    if not weights.is_file():
        raise SerbenchError(f"{weights}: missing (its description {description_file.name} lists it)")
    if _sha256(weights) != description.get("weights", {}).get("sha256"):
        raise SerbenchError(f"{weights}: changed since its run wrote it (its sha256 differs from {description_file.name})")
    try:
        return description, load_file(weights)
    except SafetensorError as exc:
        raise SerbenchError(f"{weights}: not a safetensors file ({exc})") from None
