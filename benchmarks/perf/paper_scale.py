"""Each method at its paper's encoder shape and batch: peak memory and time per training epoch.

Randomly initialised encoders of the paper's shape (no download), the method's serbench head
and loss, training steps on random audio whose durations are drawn from the real IEMOCAP
list (``--reference``), cut as the recipe cuts them. On a GPU the paper's batch is run and
``torch.cuda.max_memory_allocated`` is read; on a CPU a reduced batch (``--cpu-batch``) is
run, the time per audio second is extrapolated to a training epoch (linear in audio, an
assumption), and the memory figure is the process's peak RSS at that reduced batch. The
output says which.

    python benchmarks/perf/paper_scale.py [--methods sap_gap,gmp_atl] [--steps 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from serbench.api.downstream import DownstreamContext
from serbench.run import finetune
from serbench.run.registry import create, registry

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "iemocap" / "emobox_iemocap.jsonl"
CLASSES = ("neu", "hap", "ang", "sad")
TRAIN_SHARE = {"iemocap_5fold": 4 / 5, "iemocap_loso10": 8 / 10}
SHAPES = {  # (config class, hidden, layers, heads, ffn, layer-norm front-end and stable layer norm)
    "wavlm_large": ("WavLMConfig", 1024, 24, 16, 4096, True),
    "hubert_base": ("HubertConfig", 768, 12, 12, 3072, False),
    "hubert_large": ("HubertConfig", 1024, 24, 16, 4096, True),
}
METHODS = {  # the paper recipe's encoder, protocol, batch and cut (seconds), fine-tuned or frozen
    "sap_gap": dict(encoder="wavlm_large", protocol="iemocap_loso10", batch=64, max_seconds=19.0, crop=0.0, finetune=True),
    "wavlm_cond": dict(encoder="wavlm_large", protocol="iemocap_5fold", batch=32, max_seconds=0.0, crop=5.0, finetune=True),
    "gmp_atl": dict(encoder="hubert_base", protocol="iemocap_5fold", batch=64, max_seconds=0.0, crop=0.0, finetune=True),
    "wap_la": dict(encoder="hubert_large", protocol="iemocap_5fold", batch=96, max_seconds=0.0, crop=0.0, finetune=False),
}


def encoder(shape: str):
    import transformers

    from serbench_plugins.upstreams.hf import TransformersEncoder

    name, hidden, layers, heads, ffn, layer_norm = SHAPES[shape]
    config = getattr(transformers, name)(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                         intermediate_size=ffn, feat_extract_norm="layer" if layer_norm else "group",
                                         do_stable_layer_norm=layer_norm, layerdrop=0.0)
    torch.manual_seed(0)
    model = getattr(transformers, name.replace("Config", "Model"))(config)
    return TransformersEncoder(model, f"random-{shape}", do_normalize=True, pass_mask=layer_norm)


def durations(reference: Path) -> np.ndarray:
    if reference.exists():
        return np.array([json.loads(line)["length"] for line in reference.read_text().splitlines() if line.strip()])
    return np.clip(np.random.default_rng(0).lognormal(1.3, 0.55, 5531), 0.6, 34.0)  # matched to the real list


def cut(seconds, recipe: dict) -> list[float]:
    """Durations as the recipe feeds them: truncated to ``max_seconds``, cropped to ``crop``."""
    return [min(s, recipe["max_seconds"] or s, recipe["crop"] or s) for s in seconds]


def batch_of(seconds: np.ndarray, recipe: dict, device: torch.device, frame_rate: float, dim: int) -> dict:
    cut_seconds = cut(seconds, recipe)
    g = torch.Generator().manual_seed(0)
    n = len(cut_seconds)
    batch = {"ids": [str(i) for i in range(n)], "labels": torch.arange(n, device=device) % 4,
             "genders": ["F", "M"] * (n // 2) + ["F"] * (n % 2), "speakers": ["s"] * n, "transcripts": [""] * n,
             "attributes": torch.rand(n, 3, generator=g).to(device)}
    if recipe["finetune"]:
        sizes = torch.tensor([int(c * 16000) for c in cut_seconds])
        wavs = torch.zeros(n, int(sizes.max()))
        for row, size in enumerate(sizes.tolist()):
            wavs[row, :size] = torch.randn(size, generator=g) * 0.1
        batch.update(wavs=wavs.to(device), wav_lengths=sizes.to(device))
    else:  # frozen: the cached last hidden state
        lengths = torch.tensor([int(c * frame_rate) for c in cut_seconds], device=device)
        features = torch.randn(n, 1, int(lengths.max()), dim, generator=g).to(device)
        batch.update(features=features, lengths=lengths, mask=torch.arange(features.shape[2], device=device)[None] < lengths[:, None])
    return batch, float(sum(cut_seconds))


def model_for(method: str, recipe: dict, upstream, device: torch.device):
    spec = registry().get("downstream", method)
    recipe_obj = spec.meta.recipe
    pooling = (recipe_obj.pooling if recipe_obj else None) or spec.meta.default_pooling or "mean"
    loss_name = (recipe_obj.loss if recipe_obj else None) or spec.meta.default_loss or "ce"
    layers = upstream.num_layers if recipe["finetune"] else 1
    context = DownstreamContext(layers, upstream.dim, upstream.frame_rate, CLASSES,
                                lambda d: create("pooling", pooling, d), (1708, 1636, 1103, 1084), loss=loss_name)
    head = create("downstream", method, context)
    loss = create("loss", loss_name, list(CLASSES), [1708, 1636, 1103, 1084])
    if not recipe["finetune"]:
        return head.to(device), loss
    finetune.prepare(upstream, freeze_frontend=True, gradient_checkpointing=False,
                     spec_augment=spec.meta.spec_augment is not False)
    needs = spec.meta.needs
    vad = 3 if "vad" in (needs({}) if callable(needs) else needs) else None
    return finetune.FineTuneModel(upstream, head, range(upstream.num_layers), vad).to(device), loss


def measure(method: str, steps: int, cpu_batch: int, reference: Path, device: torch.device) -> str:
    recipe = METHODS[method]
    upstream = encoder(recipe["encoder"])
    model, loss_fn = model_for(method, recipe, upstream, device)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    all_seconds = durations(reference)
    batch_size = recipe["batch"] if device.type == "cuda" else cpu_batch
    rng = np.random.default_rng(1)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    timed, audio = 0.0, 0.0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for step in range(steps + 1):  # the first step warms up
        batch, seconds = batch_of(rng.choice(all_seconds, batch_size), recipe, device, upstream.frame_rate, upstream.dim)
        t0 = time.perf_counter()
        with autocast:
            loss = loss_fn(model(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step:
            timed, audio = timed + time.perf_counter() - t0, audio + seconds
    epoch_audio = sum(cut(all_seconds, recipe)) * TRAIN_SHARE[recipe["protocol"]]
    epoch_s = timed / audio * epoch_audio
    if device.type == "cuda":
        memory = f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB at batch {batch_size}"
    else:
        memory = f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB at batch {batch_size} (not the paper's {recipe['batch']})"
    return (f"| {method} | {recipe['encoder']}, {'fine-tuned' if recipe['finetune'] else 'frozen (features)'} | "
            f"{recipe['batch']} | {timed / steps:.1f} s per step of {batch_size} | {epoch_s / 60:.0f} min "
            f"(extrapolated from {audio:.0f} s of audio to {epoch_audio / 3600:.1f} h) | {memory} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    parser.add_argument("--cpu-batch", type=int, default=2, help="utterances per step on a CPU")
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {where}; torch {torch.__version__}; durations from "
          f"{'the IEMOCAP list' if args.reference.exists() else 'a matched log-normal'}")
    methods = args.methods.split(",")
    if len(methods) > 1:  # one process per method, so that each peak memory figure is its own
        print("| method | encoder | paper batch | measured | time per epoch | memory |\n|---|---|---|---|---|---|", flush=True)
        for method in methods:
            done = subprocess.run([sys.executable, __file__, "--methods", method, "--steps", str(args.steps),
                                   "--cpu-batch", str(args.cpu_batch), "--reference", str(args.reference)],
                                  capture_output=True, text=True)
            print(done.stdout.splitlines()[-1] if done.returncode == 0 else f"| {method} | failed: {done.stderr.strip().splitlines()[-1]} |",
                  flush=True)
        return
    print(measure(methods[0], args.steps, args.cpu_batch, args.reference, device), flush=True)


if __name__ == "__main__":
    main()
