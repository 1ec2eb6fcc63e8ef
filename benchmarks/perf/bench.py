"""Speed of serbench's frozen-encoder path, on whatever device is present.

(a) Extraction throughput (audio seconds per wall second) and model FLOP utilisation of a
    WavLM-Large-shaped encoder (random weights) over an IEMOCAP-sized corpus: the durations
    of the real utterance list when ../shared/reference is there, else a matched log-normal.
(b) Wall time of a 5-fold frozen benchmark (extraction + the superb head trained on five
    folds) with features extracted once, against the same head and the same steps with the
    encoder re-run on every training batch (what s3prl's runner does). Both in one process.

    python benchmarks/perf/bench.py                      # full size (meant for a GPU)
    python benchmarks/perf/bench.py --hours 0.05 --encoder base --epochs 1   # a CPU-sized taste

Figures go to benchmarks/perf/RESULTS.md by hand, with the device line this prints.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from serbench.api.downstream import DownstreamContext
from serbench.run.batching import frame_mask
from serbench.run.features import length_batches
from serbench.run.registry import create
from serbench_plugins.upstreams.hf import TransformersEncoder

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "iemocap" / "emobox_iemocap.jsonl"
SHAPES = {  # WavLM configurations: (hidden, layers, heads, ffn, conv channels)
    "large": (1024, 24, 16, 4096, 512),
    "base": (768, 12, 12, 3072, 512),
    "small": (256, 4, 4, 1024, 256),
}
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}


def encoder(shape: str, device: torch.device) -> TransformersEncoder:
    from transformers import WavLMConfig, WavLMModel

    hidden, layers, heads, ffn, conv = SHAPES[shape]
    config = WavLMConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                         intermediate_size=ffn, conv_dim=(conv,) * 7, feat_extract_norm="layer",
                         do_stable_layer_norm=True)
    torch.manual_seed(0)
    model = WavLMModel(config).eval()
    return TransformersEncoder(model, f"random-wavlm-{shape}", do_normalize=True, pass_mask=True).to(device)


def durations(hours: float | None, seed: int = 0, reference: Path = REFERENCE) -> tuple[np.ndarray, np.ndarray]:
    """(seconds, session 1-5) per utterance; the real IEMOCAP list, cut to ``hours``."""
    rng = np.random.default_rng(seed)
    if reference.exists():
        rows = [json.loads(line) for line in reference.read_text().splitlines() if line.strip()]
        seconds = np.array([r["length"] for r in rows])
        sessions = np.array([int(r["wav"].split("Session")[1][0]) for r in rows])
    else:  # same count and mean length as the real list
        seconds = np.clip(rng.lognormal(1.3, 0.55, 5531), 0.6, 34.0)
        sessions = rng.integers(1, 6, 5531)
    order = rng.permutation(seconds.size)
    seconds, sessions = seconds[order], sessions[order]
    if hours is not None:
        keep = np.cumsum(seconds) <= hours * 3600
        seconds, sessions = seconds[keep], sessions[keep]
    return seconds, sessions


def audio(seconds: np.ndarray, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(int(s * 16000), generator=g) * 0.1 for s in seconds]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_encoder(model, wavs: list[torch.Tensor], device, bf16: bool, grad_mode=torch.inference_mode):
    sizes = torch.tensor([w.numel() for w in wavs])
    padded = torch.zeros(len(wavs), int(sizes.max()))
    for row, w in enumerate(wavs):
        padded[row, : w.numel()] = w
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    with grad_mode(), autocast:
        return model(padded.to(device, non_blocking=True), sizes.to(device))


def flops_per_audio_second(model, device, bf16: bool) -> float:
    wav = [torch.randn(16000 * 10) * 0.1]
    with FlopCounterMode(display=False) as counter:  # (weight-norm parametrisation breaks it under inference_mode)
        run_encoder(model, wav, device, bf16, torch.no_grad)
    return counter.get_total_flops() / 10.0


def feature_bytes(model, seconds: np.ndarray) -> int:
    return int(seconds.sum() * model.frame_rate * model.num_layers * model.dim * 2)


def placement(model, seconds: np.ndarray, device: torch.device) -> torch.device:
    """serbench's rule (features.keep_on_device): features live on the GPU when together they
    take at most half of its free memory, else on the host."""
    if device.type != "cuda":
        return device
    free, _ = torch.cuda.mem_get_info(device)
    return device if feature_bytes(model, seconds) <= 0.5 * free else torch.device("cpu")


def extract_all(model, wavs, device, bf16, batch_seconds, store: torch.device):
    """Length-sorted batches, as serbench extracts; returns per-utterance [L, T, D] fp16 on ``store``."""
    features = [None] * len(wavs)
    for batch in length_batches([w.numel() for w in wavs], int(batch_seconds * 16000)):
        out = run_encoder(model, [wavs[i] for i in batch], device, bf16)
        hidden = out.hidden_states.to(torch.float16)
        for row, i in enumerate(batch):
            item = hidden[:, row, : int(out.lengths[row])]
            features[i] = item if store == device else item.to(store).pin_memory()
    sync(device)
    return features


def head_for(model, device):
    context = DownstreamContext(model.num_layers, model.dim, model.frame_rate, ("a", "b", "c", "d"),
                                lambda dim: create("pooling", "mean", dim))
    torch.manual_seed(0)
    return create("downstream", "superb", context).to(device)


def train_folds(model, wavs, sessions, labels, device, bf16, epochs, batch_size, features=None):
    """Five folds of head training; with ``features`` the encoder is never called."""
    steps = 0
    for fold in range(1, 6):
        head = head_for(model, device)
        optimizer = torch.optim.AdamW(head.parameters(), lr=1e-4)
        train = np.flatnonzero(sessions != fold)
        rng = np.random.default_rng(fold)
        for _ in range(epochs):
            order = train[rng.permutation(train.size)]
            for start in range(0, order.size, batch_size):
                ids = order[start : start + batch_size]
                if features is not None:
                    items = [features[i] for i in ids]
                    lengths = torch.tensor([f.shape[1] for f in items], device=device)
                    padded = torch.zeros(len(items), items[0].shape[0], int(lengths.max()), items[0].shape[2], device=device)
                    for row, f in enumerate(items):
                        padded[row, :, : f.shape[1]] = f.to(device, non_blocking=True).float()
                else:
                    out = run_encoder(model, [wavs[i] for i in ids], device, bf16)
                    lengths = out.lengths
                    padded = out.hidden_states.permute(1, 0, 2, 3).float().clone()
                batch = {"features": padded, "mask": frame_mask(lengths, padded.shape[2])}
                loss = torch.nn.functional.cross_entropy(head(batch)["logits"], torch.as_tensor(labels[ids], device=device))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                steps += 1
    sync(device)
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default="large", choices=SHAPES)
    parser.add_argument("--hours", type=float, default=None, help="cut the corpus to this many hours (default: all, ~7 h)")
    parser.add_argument("--epochs", type=int, default=30, help="head epochs per fold (both modes)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batch-seconds", type=float, default=1200.0, help="audio per extraction batch")
    parser.add_argument("--rerun-epochs", type=int, default=None,
                        help="head epochs per fold when re-running the encoder (default: --epochs); "
                             "fewer bound the time, and the 30-epoch figure is then projected per epoch")
    parser.add_argument("--skip-rerun", action="store_true", help="only part (a) and the cached benchmark")
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="IEMOCAP utterance list (EmoBox jsonl) for durations")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bf16 = device.type == "cuda"
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"{platform.processor() or 'cpu'} x{torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; bf16 autocast: {bf16}")
    model = encoder(args.encoder, device)
    seconds, sessions = durations(args.hours, reference=args.reference)
    wavs = audio(seconds)
    labels = np.random.default_rng(1).integers(0, 4, seconds.size)
    total = float(seconds.sum())
    source = "the real IEMOCAP list" if args.reference.exists() else "a matched log-normal (no reference list)"
    print(f"corpus: durations from {source}; {seconds.size} utterances, {total / 3600:.2f} h; encoder: WavLM-{args.encoder} shape, random weights")

    store = placement(model, seconds, device)
    print(f"features: {feature_bytes(model, seconds) / 1e9:.1f} GB fp16, kept on {store} (serbench's placement rule)")
    run_encoder(model, wavs[:2], device, bf16)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    features = extract_all(model, wavs, device, bf16, args.batch_seconds, store)
    extract_s = time.perf_counter() - t0
    flops = flops_per_audio_second(model, device, bf16) * total
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    achieved = flops / extract_s
    mfu = f"{achieved / peak:.1%}" if peak and bf16 else "n/a (no peak figure for this device)"
    print(f"(a) extraction: {extract_s:.1f} s = {total / extract_s:.1f}x real time; "
          f"{achieved / 1e9:.1f} GFLOP/s achieved; MFU {mfu}")

    t0 = time.perf_counter()
    steps = train_folds(model, wavs, sessions, labels, device, bf16, args.epochs, args.batch_size, features)
    cached_s = extract_s + time.perf_counter() - t0
    print(f"(b) 5-fold frozen benchmark with the cache: {cached_s:.1f} s "
          f"(extraction {extract_s:.1f} s + {steps} head steps {cached_s - extract_s:.1f} s)")
    if device.type == "cuda":
        print(f"    peak GPU memory so far: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    if not args.skip_rerun:
        rerun_epochs = args.rerun_epochs or args.epochs
        t0 = time.perf_counter()
        rerun_steps = train_folds(model, wavs, sessions, labels, device, bf16, rerun_epochs, args.batch_size)
        rerun_s = time.perf_counter() - t0
        print(f"    same head, encoder re-run every step: {rerun_s:.1f} s ({rerun_steps} steps, {rerun_epochs} epochs per fold)")
        if rerun_epochs == args.epochs:
            print(f"    ratio {rerun_s / cached_s:.1f}x")
        else:
            projected = rerun_s / rerun_epochs * args.epochs
            print(f"    projected to {args.epochs} epochs per fold (x{args.epochs / rerun_epochs:g}, a projection, "
                  f"not a measurement): {projected:.0f} s, {projected / cached_s:.1f}x the cached benchmark")


if __name__ == "__main__":
    main()
