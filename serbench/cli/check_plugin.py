"""``serbench check-plugin KIND NAME``: run one plugin (a third party's, or a built-in) through
the conformance checks on small random inputs, before it costs a real run: its output contract
(:mod:`serbench.run.conformance`), padding invariance (what lies beyond an utterance's length must
not change its output), batch invariance (an utterance batched with a longer one gives what it
gives alone) and determinism (the same input twice, the same output). An executor runs a small
synthetic run and must give the in-process run's metrics.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from serbench.api.errors import SerbenchError
from serbench.run import conformance, precision

ATOL = 1e-4  # float32 on a CPU: batched and alone differ by reduction order only


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""


def _close(a: torch.Tensor, b: torch.Tensor) -> tuple[bool, str]:
    if a.shape != b.shape:
        return False, f"shapes {list(a.shape)} and {list(b.shape)}"
    gap = float((a.float() - b.float()).abs().max()) if a.numel() else 0.0
    scale = max(1.0, float(b.float().abs().max())) if b.numel() else 1.0
    return gap <= ATOL * scale, f"largest difference {gap:.3g}"


def _run(checks: list[Check], name: str, body: Callable[[], tuple[bool, str] | None]) -> None:
    """Record one check; a SerbenchError or any exception from the plugin fails it, named."""
    try:
        outcome = body()
    except SerbenchError as exc:
        checks.append(Check(name, False, str(exc)))
        return
    except Exception as exc:  # the plugin's own failure is this check's result, not a crash
        checks.append(Check(name, False, f"{type(exc).__name__}: {exc}"))
        return
    passed, detail = outcome if outcome is not None else (True, "")
    checks.append(Check(name, passed, detail))


def _waves(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([12_800, 8_000])  # 0.8 s and 0.5 s at 16 kHz
    wavs = torch.randn(2, 12_800, generator=generator) * 0.1
    wavs[1, 8_000:] = 0.0
    return wavs, lengths


def check_upstream(upstream: Any, name: str) -> list[Check]:
    checks: list[Check] = []
    upstream.eval()
    wavs, lengths = _waves()
    outputs: dict[str, Any] = {}

    def contract():
        with torch.no_grad():
            outputs["batched"] = upstream(wavs, lengths)
        conformance.check_upstream(outputs["batched"], upstream, 2, name)

    _run(checks, "output contract (UpstreamOutput [num_layers, B, T, dim], finite, float16 range)", contract)
    if not checks[-1].passed:
        return checks

    def alone():
        with torch.no_grad():
            single = upstream(wavs[1:, : int(lengths[1])], lengths[1:])
        n = int(single.lengths[0])
        if int(outputs["batched"].lengths[1]) != n:
            return False, f"{int(outputs['batched'].lengths[1])} frames batched, {n} alone"
        return _close(outputs["batched"].hidden_states[:, 1, :n], single.hidden_states[:, 0, :n])

    if getattr(upstream, "batch_safe", True):
        _run(checks, "padding invariance (an utterance batched with a longer one = alone)", alone)
    else:
        checks.append(Check("padding invariance", True, "declares batch_safe = False: serbench runs it one utterance at a time"))

    def again():
        with torch.no_grad():
            second = upstream(wavs, lengths)
        return _close(outputs["batched"].hidden_states, second.hidden_states)

    _run(checks, "determinism (eval mode, the same input twice)", again)
    _run(checks, "extraction precisions (Upstream.precisions)",
         lambda: _precisions(upstream, name, wavs, lengths, outputs["batched"]))
    return checks


def _precisions(upstream: Any, name: str, wavs: torch.Tensor, lengths: torch.Tensor, fp32: Any) -> tuple[bool, str]:
    """What ``precisions`` declares is honoured: fp32 always; where bf16 is declared, a bf16
    autocast forward (on this CPU, when it has bf16) keeps the contract and stays within 5% of
    fp32 (relative Frobenius gap; bf16 keeps 8 significant bits)."""
    declared = tuple(getattr(upstream, "precisions", ("fp32",)))
    if "fp32" not in declared or not set(declared) <= {"fp32", "bf16"}:
        return False, f"declares {declared!r}: expected ('fp32',) or ('fp32', 'bf16')"
    if "bf16" not in declared:
        return True, "fp32 only: -o upstream.precision=bf16 is refused for it"
    if not precision.device_supports_bf16(torch.device("cpu")):
        return True, "declares bf16; not run here (this CPU has no bf16 support)"
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = upstream(wavs, lengths)
    conformance.check_upstream(out, upstream, 2, name)
    a, b = out.hidden_states.float(), fp32.hidden_states.float()
    if a.shape != b.shape:
        return False, f"bf16 shape {list(a.shape)}, fp32 {list(b.shape)}"
    gap = float((a - b).norm() / b.norm().clamp_min(1e-12))
    return gap <= 0.05, f"bf16 forward within {gap:.2%} of fp32" + ("" if gap <= 0.05 else " (more than 5%)")


def _frames(dim: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, dict]:
    generator = torch.Generator().manual_seed(seed)
    frames = torch.randn(2, 12, dim, generator=generator)
    mask = torch.arange(12)[None] < torch.tensor([12, 7])[:, None]
    vad = torch.rand(2, 12, generator=generator) > 0.3
    return frames, mask, {"vad": vad & mask}


def check_pooling(pooling: torch.nn.Module, name: str) -> list[Check]:
    checks: list[Check] = []
    pooling.eval()
    dim = 16
    frames, mask, batch = _frames(dim)
    results: dict[str, torch.Tensor] = {}

    def contract():
        conformance.pooling_out_dim(pooling, name)
        with torch.no_grad():
            results["out"] = pooling(frames, mask, batch)
        conformance.check_pooling(results["out"], pooling, 2, name)

    _run(checks, "output contract ([B, out_dim], finite)", contract)
    if not checks[-1].passed:
        return checks

    def padding():
        noisy = frames.clone()
        noisy[~mask] = 1e3  # garbage where nothing is valid
        with torch.no_grad():
            return _close(pooling(noisy, mask, batch), results["out"])

    def alone():
        with torch.no_grad():
            single = pooling(frames[1:, :7], mask[1:, :7], {"vad": batch["vad"][1:, :7]})
        return _close(single[0], results["out"][1])

    def again():
        with torch.no_grad():
            return _close(pooling(frames, mask, batch), results["out"])

    _run(checks, "padding invariance (frames beyond the mask change nothing)", padding)
    _run(checks, "batch invariance (a short utterance batched = alone)", alone)
    _run(checks, "determinism (eval mode, the same input twice)", again)
    return checks


def _context(make_pooling: Callable[[int], torch.nn.Module]):
    from serbench.api.downstream import DownstreamContext

    return DownstreamContext(num_layers=2, dim=16, frame_rate=50.0, classes=("neu", "hap", "ang", "sad"),
                             make_pooling=make_pooling, train_counts=(5, 5, 5, 5), loss="ce")


def _downstream_batch(seed: int = 0) -> dict:
    frames, mask, extra = _frames(16, seed)
    features = torch.stack([frames, frames.flip(-1)], dim=1) * mask[:, None, :, None]  # [B, L, T, D], zero padding
    return {"ids": ["a", "b"], "labels": torch.tensor([0, 2]), "speakers": ["s1", "s2"], "genders": ["F", "M"],
            "transcripts": ["hello there", "good bye"], "attributes": torch.rand(2, 3),
            "features": features, "mask": mask, "lengths": mask.sum(1), **extra}


def check_downstream(model: torch.nn.Module, name: str) -> list[Check]:
    checks: list[Check] = []
    model.eval()
    batch = _downstream_batch()
    results: dict[str, torch.Tensor] = {}

    def contract():
        with torch.no_grad():
            results["logits"] = conformance.check_downstream(model(batch), model, batch, 4, name)

    _run(checks, "output contract (a dict with logits [B, classes], finite)", contract)
    if not checks[-1].passed:
        return checks

    def padding():
        noisy = dict(batch, features=batch["features"].masked_fill(~batch["mask"][:, None, :, None], 1e3))
        with torch.no_grad():
            return _close(model(noisy)["logits"], results["logits"])

    def again():
        with torch.no_grad():
            return _close(model(batch)["logits"], results["logits"])

    _run(checks, "padding invariance (frames beyond the mask change nothing)", padding)
    _run(checks, "determinism (eval mode, the same input twice)", again)
    return checks


def check_loss(loss: Any, name: str) -> list[Check]:
    checks: list[Check] = []
    logits = torch.randn(6, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    generator = torch.Generator().manual_seed(1)
    batch = {"labels": torch.tensor([0, 1, 2, 3, 0, 1]), "attributes": torch.rand(6, 3), "ids": list("abcdef"),
             # a soft-target loss reads the raters' shares; a regression loss (--task dimensional) the targets
             "soft_labels": torch.softmax(torch.randn(6, 4, generator=generator), dim=-1),
             "targets": torch.rand(6, 3, generator=generator)}
    # what the built-in downstreams put beside the logits (a cosine head; valence and arousal heads;
    # one regressed value per dimension)
    outputs = {"logits": logits, "cosine": torch.tanh(logits), "valence": torch.sigmoid(logits[:, 0]),
               "arousal": torch.sigmoid(logits[:, 1]), "values": logits[:, :3]}

    def contract():
        value = loss(outputs, batch)
        conformance.check_loss(value, loss, name)
        value.backward()
        return bool(torch.isfinite(logits.grad).all()), "finite gradients"

    _run(checks, "output contract (a finite scalar with finite gradients)", contract)
    return checks


def check_protocol(protocol: Any, name: str) -> list[Check]:
    from serbench.api.audio import check_readable
    from serbench.api.protocol import Protocol

    checks: list[Check] = []

    def kind():
        if not isinstance(protocol, Protocol):
            return False, f"returned {type(protocol).__name__}, not a serbench.api.protocol.Protocol"
        return None

    _run(checks, "returns a serbench.api.protocol.Protocol", kind)
    if not checks[-1].passed:
        return checks
    _run(checks, "usable folds (two classes or more, no empty split, every class trained on, names that can "
                 "name files)", protocol.check_usable)
    _run(checks, "every audio file readable",
         lambda: check_readable(protocol.utterances.values()))
    return checks


def check_perturbation(perturbation: Any, name: str) -> list[Check]:
    """A perturbation on two seconds of a tone with noise: a finite float waveform of the same
    length, and the same output from two generators seeded alike (its only randomness is the one
    serbench seeds, so a rerun and the feature cache agree)."""
    rng = np.random.default_rng(0)
    t = np.arange(32_000) / 16_000
    wav = (0.1 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    out = perturbation(wav.copy(), np.random.default_rng(7))
    shape_ok = isinstance(out, np.ndarray) and out.shape == wav.shape
    checks = [Check("same length", shape_ok, "" if shape_ok else f"returned {getattr(out, 'shape', type(out).__name__)} "
                    f"for {wav.shape}")]
    finite = shape_ok and bool(np.isfinite(out).all())
    checks.append(Check("finite samples", finite))
    again = perturbation(wav.copy(), np.random.default_rng(7))
    same = shape_ok and isinstance(again, np.ndarray) and np.array_equal(out, again)
    checks.append(Check("deterministic given the generator", same, "" if same else f"{name} draws randomness of its own"))
    return checks


def check_executor(spec: Any, params: dict, name: str) -> list[Check]:
    """Run one small synthetic run (fbank, superb, one epoch, five folds) in this process and again
    through the executor, each from an empty feature cache: its interface, and the same per-job
    metrics and summary both ways (a unit lost, run twice or run differently shows here)."""
    import os
    import tempfile

    from serbench.run.execute import run
    from serbench.run.request import RunRequest

    checks: list[Check] = []
    executor = None

    def interface():
        nonlocal executor
        executor = spec.build(**params)  # an executor may refuse when built (slurm: no sbatch, no controller)
        slots = executor.slots(5)
        if not isinstance(slots, int) or isinstance(slots, bool) or not 1 <= slots <= 5:
            return False, f"slots(5) returned {slots!r}, expected an int in 1..5"
        if not getattr(executor, "in_process", False) and not callable(getattr(executor, "map", None)):
            return False, "no map(run_dir, units, device, reporter) method (and not in_process)"
        return None

    _run(checks, "interface: slots(n) in 1..n, map(...) unless in_process", interface)
    if not checks[-1].passed:
        return checks
    overrides = ["protocol.per_class=1", "train.max_epochs=1"]
    given = [f"executor.{k}={v!r}" for k, v in params.items()]
    with tempfile.TemporaryDirectory(prefix="serbench-check-") as tmp:
        before = os.environ.get("SERBENCH_CACHE")
        results = {}

        def once(label: str, executor_name: str, extra: list[str]):
            os.environ["SERBENCH_CACHE"] = str(Path(tmp) / label / "cache")
            request = RunRequest("fbank", "superb", protocol="synthetic", device="cpu", overrides=overrides + extra,
                                 executor=executor_name)
            results[label] = run(request, out=Path(tmp) / label / "runs")

        try:
            _run(checks, "reference run in this process", lambda: once("reference", "local", []))
            _run(checks, f"the same run through {name} (from an empty cache)", lambda: once("executor", name, given))
        finally:
            if before is None:
                os.environ.pop("SERBENCH_CACHE", None)
            else:
                os.environ["SERBENCH_CACHE"] = before
        if len(results) == 2:
            def same():
                a, b = results["reference"].data, results["executor"].data
                jobs = lambda d: sorted((f["fold"], f["seed"], json.dumps(f["metrics"], sort_keys=True)) for f in d["folds"])
                if jobs(a) != jobs(b):
                    return False, "per-job metrics differ from the in-process run"
                return (a["summary"] == b["summary"]), "summary " + ("identical" if a["summary"] == b["summary"] else "differs")
            _run(checks, "every job done once, with the in-process run's metrics", same)
    return checks


def check_plugin(kind: str, name: str, overrides: list[str] | None = None, data: Path | None = None) -> list[Check]:
    """Build plugin ``name`` of ``kind`` (with ``-o kind.param=value`` overrides) and run its checks."""
    from serbench.run.overrides import check_keys, parse_overrides
    from serbench.run.registry import check_kind, registry

    kind = check_kind(kind)
    spec = registry().get(kind, name)
    parsed = parse_overrides(overrides or [])
    check_keys(parsed, {kind: spec.params})
    params = spec.resolve(parsed.get(kind, {}), f"-o {kind}")
    mean = registry().get("pooling", "mean")
    if kind == "upstream":
        return check_upstream(spec.build(**params), name)
    if kind == "pooling":
        return check_pooling(spec.build(16, **params), name)
    if kind == "downstream":
        model = spec.build(_context(lambda dim: mean.build(dim)), **params)
        return check_downstream(model, name)
    if kind == "loss":
        extra = {}
        if spec.meta.targets == "soft":  # its factory also receives the training utterances' rater distributions
            extra["train_distributions"] = np.full((20, 4), 0.25)
        return check_loss(spec.build(["neu", "hap", "ang", "sad"], [5, 5, 5, 5], **params, **extra), name)
    if kind == "protocol":
        from serbench.run.plan import load_protocol

        return check_protocol(load_protocol(name, data, parsed.get("protocol", {})), name)
    if kind == "perturbation":
        return check_perturbation(spec.build(**params), name)
    return check_executor(spec, params, name)
