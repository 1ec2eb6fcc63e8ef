"""Speed and memory of serbench's frozen-encoder path, on whatever device is present.

(a) serbench's own extraction, as ``serbench run`` does it: an IEMOCAP-shaped corpus (the real
    utterance durations, synthetic audio written as 16-bit wav files, one Utterance per file as
    the protocols make them) through ``serbench.run.features.extract`` into a real feature
    cache in a temporary folder (cache writes included), with a WavLM-Large-shaped encoder
    (random weights) through the hf plugin's TransformersEncoder. Measured in the same run:
    audio seconds per wall second, useful GFLOP/s (torch's FlopCounterMode, fitted over
    utterance length), the ratio to a bare transformers forward of the same utterances (one by
    one, no serbench code), the ratio to the device's matrix-multiply peak (measured here on a
    CPU: 4096^2 matmuls on all threads; the datasheet bf16 figure on a GPU) and the peak RSS
    while extracting, for the corpus and for a quarter of it (memory must not grow with it).
(b) Wall time of a 5-fold frozen benchmark (extraction + the superb head trained on five
    folds over (a)'s features) against the same head with the encoder re-run on every training
    batch (what s3prl's runner does), the latter timed over a few steps and projected.

    python benchmarks/perf/bench.py                    # CPU: 0.1 h, about 10 minutes on 2 idle cores
    python benchmarks/perf/bench.py --quick            # GPU: 1 h of the list, within 5 minutes on an H100
    python benchmarks/perf/bench.py --hours all --results   # the whole list; table into RESULTS.md

Peak RSS is the kernel's high-water mark of this process (VmHWM), reset before each measured
phase by writing 5 to /proc/self/clear_refs (Linux); it includes the encoder's weights.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.flop_counter import FlopCounterMode

from serbench.api.batch import frame_mask
from serbench.api.downstream import DownstreamContext
from serbench.api.protocol import Utterance
from serbench.run.cache import CacheKey, FeatureCache
from serbench.run.features import extract, keep_on_device
from serbench.run.precision import cache_field
from serbench.run.registry import create
from serbench_plugins.upstreams.hf import TransformersEncoder

HERE = Path(__file__).resolve()
REFERENCE = next((p / "shared" / "reference" / "iemocap" / "emobox_iemocap.jsonl" for p in HERE.parents
                  if (p / "shared" / "reference" / "iemocap" / "emobox_iemocap.jsonl").exists()),
                 HERE.parents[3] / "shared" / "reference" / "iemocap" / "emobox_iemocap.jsonl")
RESULTS = HERE.parent / "RESULTS.md"
SHAPES = {  # WavLM configurations: (hidden, layers, heads, ffn, conv channels)
    "large": (1024, 24, 16, 4096, 512),
    "base": (768, 12, 12, 3072, 512),
    "small": (256, 4, 4, 1024, 256),
}
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}  # dense, datasheets
TABLE_START, TABLE_END = "<!-- bench.py (a) table: start -->", "<!-- bench.py (a) table: end -->"


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


def write_corpus(folder: Path, seconds: np.ndarray, seed: int = 0) -> list[Utterance]:
    """Noise at speech-like level, one 16 kHz 16-bit wav per utterance, as a protocol lists them."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    utterances = []
    for k, s in enumerate(seconds):
        path = folder / f"utt{k:05d}.wav"
        sf.write(path, np.clip(rng.standard_normal(int(s * 16000)) * 0.1, -1, 1), 16000, subtype="PCM_16")
        utterances.append(Utterance(id=f"utt{k:05d}", path=path, label="neu", speaker=f"spk{k % 10}",
                                    session=str(k % 5 + 1), duration=float(s)))
    return utterances


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def rss_reset() -> bool:
    """Reset this process's peak RSS (VmHWM); False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss_gb(field: str = "VmHWM") -> float:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1)) * 1024 / 1e9 if match else float("nan")


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 4096, repeats: int = 3) -> float:
    """FLOP/s of the best of ``repeats`` n x n matrix products on all threads."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def device_peak(device: torch.device, name: str, precision: str) -> tuple[float | None, str]:
    if device.type == "cuda":
        peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
        return peak, "datasheet dense bf16" if peak else "no datasheet figure for this GPU"
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    return matmul_peak(device, dtype), f"measured 4096^2 {precision} matmul, {torch.get_num_threads()} threads"


def flop_model(model, device) -> np.ndarray:
    """Coefficients (c0, c1, c2) of FLOPs = c0 + c1 s + c2 s^2 for an utterance of s seconds:
    torch's FlopCounterMode counts three lengths exactly, the fit is exact for the linear parts
    (convolutions, projections) and the quadratic one (attention) up to frame rounding."""
    points = (1.0, 2.0, 4.0)
    counts = []
    for s in points:
        wav = torch.randn(1, int(s * 16000), device=device) * 0.1
        with FlopCounterMode(display=False) as counter, torch.no_grad():  # weight norm breaks it under inference_mode
            model(wav, torch.tensor([wav.shape[1]], device=device))
        counts.append(counter.get_total_flops())
    return np.polyfit(points, counts, 2)[::-1]


def useful_flops(coefficients: np.ndarray, seconds: np.ndarray) -> float:
    c0, c1, c2 = coefficients
    return float(np.sum(c0 + c1 * seconds + c2 * seconds**2))


def product_extraction(model, utterances, device, root: Path, precision: str) -> tuple[float, float, float, dict]:
    """(wall seconds, CPU seconds of every thread, peak RSS GB, features) of serbench's extraction
    into a fresh cache."""
    layers = tuple(range(model.num_layers))
    cache = FeatureCache(root, CacheKey("hf:bench", model.fingerprint(), layers, "float16", model.dim,
                                        model.frame_rate, "1", precision=cache_field(precision, device)))
    rss_reset()
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    features, stats = extract(model, utterances, device, layers, cache, precision=precision)
    sync(device)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert stats.misses == len(utterances), "the bench's cache folder was not empty"
    return wall, cpu, rss_gb(), features


def bare_forward(model, utterances, device, precision: str) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS GB) of transformers' own forward, one utterance at a time, every
    hidden state returned; the audio is read before the clock starts."""
    wavs = [torch.from_numpy(sf.read(u.path, dtype="float32")[0]) for u in utterances]
    hf = model.model
    rss_reset()
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.inference_mode(), autocast(device, precision):
        for wav in wavs:
            x = wav.to(device)[None]
            x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)  # the checkpoint's do_normalize
            hf(x, output_hidden_states=True)
    sync(device)
    return time.perf_counter() - t0, time.process_time() - c0, rss_gb()


def head_for(model, device):
    context = DownstreamContext(model.num_layers, model.dim, model.frame_rate, ("a", "b", "c", "d"),
                                lambda dim: create("pooling", "mean", dim))
    torch.manual_seed(0)
    return create("downstream", "superb", context).to(device)


def run_encoder(model, wavs: list[torch.Tensor], device, precision: str):
    sizes = torch.tensor([w.numel() for w in wavs])
    padded = torch.zeros(len(wavs), int(sizes.max()))
    for row, w in enumerate(wavs):
        padded[row, : w.numel()] = w
    with torch.inference_mode(), autocast(device, precision):
        return model(padded.to(device, non_blocking=True), sizes.to(device))


def train_folds(model, wavs, sessions, labels, device, precision, epochs, batch_size, features=None, max_steps=None):
    """Five folds of head training; with ``features`` the encoder is never called. Stops after
    ``max_steps`` steps when given; returns the steps taken."""
    steps = 0
    for fold in range(1, 6):
        head = head_for(model, device)
        optimizer = torch.optim.AdamW(head.parameters(), lr=1e-4)
        train = np.flatnonzero(sessions != fold)
        rng = np.random.default_rng(fold)
        for _ in range(epochs):
            order = train[rng.permutation(train.size)]
            for start in range(0, order.size, batch_size):
                if max_steps is not None and steps >= max_steps:
                    sync(device)
                    return steps
                ids = order[start : start + batch_size]
                if features is not None:
                    items = [features[i] for i in ids]
                    lengths = torch.tensor([f.shape[1] for f in items], device=device)
                    padded = torch.zeros(len(items), items[0].shape[0], int(lengths.max()), items[0].shape[2], device=device)
                    for row, f in enumerate(items):
                        f = f if isinstance(f, torch.Tensor) else torch.from_numpy(np.array(f))
                        padded[row, :, : f.shape[1]] = f.to(device, non_blocking=True).float()
                else:
                    out = run_encoder(model, [wavs[i] for i in ids], device, precision)
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


def steps_per_fold_set(sessions: np.ndarray, epochs: int, batch_size: int) -> int:
    return sum(epochs * -(-int((sessions != fold).sum()) // batch_size) for fold in range(1, 6))


def load_line() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def write_results(row: dict[str, str]) -> None:
    """Replace the row for the same device, precision, encoder and size in RESULTS.md's table,
    or add it (the table is created under its own heading the first time)."""
    columns = list(row)
    text = RESULTS.read_text() if RESULTS.exists() else "# Performance figures\n"
    rows = []
    if TABLE_START in text:
        head, rest = text.split(TABLE_START, 1)
        body, tail = rest.split(TABLE_END, 1)
        rows = [line for line in body.strip().splitlines()[2:] if line.startswith("|")]
    else:
        head = text.rstrip() + ("\n\n## Extraction: serbench's path against a bare forward and the device's peak "
                                "(`bench.py`, one row per device, precision, encoder and size)\n\n")
        tail = "\n"
    same = "| " + " | ".join(row[c] for c in ("device", "precision", "encoder", "corpus")) + " |"
    rows = [r for r in rows if "| " + " | ".join(r.strip("|").split("|")[i].strip() for i in (1, 2, 3, 4)) + " |" != same]
    rows.append("| " + " | ".join(row[c] for c in columns) + " |")
    table = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns), *rows]
    RESULTS.write_text(head + TABLE_START + "\n" + "\n".join(table) + "\n" + TABLE_END + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default="large", choices=SHAPES)
    parser.add_argument("--hours", default=None,
                        help="corpus size in hours of the list, or 'all' (~7 h; default: 0.1 on a CPU, all on a GPU)")
    parser.add_argument("--quick", action="store_true",
                        help="GPU check within 5 minutes: 1 h of the list, 5 head epochs, 10 re-run steps")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default=None,
                        help="extraction precision (default: the device's, fp32 on a CPU, bf16 on a GPU)")
    parser.add_argument("--epochs", type=int, default=None, help="head epochs per fold in (b) (default: 30; 5 with --quick; 2 on a CPU)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rerun-steps", type=int, default=None,
                        help="head steps timed with the encoder re-run (default 10 on a GPU, 2 on a CPU); projected to all")
    parser.add_argument("--versus-fp32", action="store_true",
                        help="with --precision bf16: also time serbench's fp32 extraction of the same corpus in this run")
    parser.add_argument("--skip-b", action="store_true", help="only part (a)")
    parser.add_argument("--skip-quarter", action="store_true", help="no second extraction over a quarter of the corpus")
    parser.add_argument("--results", action="store_true", help="write (a)'s row into benchmarks/perf/RESULTS.md")
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="IEMOCAP utterance list (EmoBox jsonl) for durations")
    parser.add_argument("--workdir", type=Path, default=None, help="where the wav files and the cache go (default: a temp folder)")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu = device.type == "cuda"
    precision = args.precision or ("bf16" if gpu else "fp32")
    hours = {"all": None}.get(args.hours, args.hours)
    if args.hours is None:
        hours = 1.0 if args.quick else (None if gpu else 0.1)
    hours = None if hours is None else float(hours)
    epochs = args.epochs or (5 if args.quick else 30 if gpu else 2)
    rerun_steps = args.rerun_steps or (10 if gpu else 2)
    name = torch.cuda.get_device_name() if gpu else f"{platform.processor() or 'cpu'} x{torch.get_num_threads()} threads"
    started, load = datetime.datetime.now(datetime.timezone.utc), load_line()
    print(f"device: {name}; torch {torch.__version__}; precision {precision}; {load}")

    model = encoder(args.encoder, device)
    weights_gb = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e9
    seconds, sessions = durations(hours, reference=args.reference)
    total = float(seconds.sum())
    source = "the real IEMOCAP list" if args.reference.exists() else "a matched log-normal (no reference list found)"
    print(f"corpus: durations from {source}; {seconds.size} utterances, {total / 3600:.2f} h; "
          f"encoder: WavLM-{args.encoder} shape, random weights ({weights_gb:.2f} GB)")

    needed = total * model.frame_rate * model.num_layers * model.dim * 2 * 1.25  # fp16 features, corpus + quarter
    free = shutil.disk_usage(args.workdir or tempfile.gettempdir()).free
    if needed > free:
        raise SystemExit(f"the feature cache needs about {needed / 1e9:.0f} GB and {args.workdir or tempfile.gettempdir()} "
                         f"has {free / 1e9:.0f} GB free: pass --hours (e.g. --quick's 1 h) or --workdir on a larger disk")
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        root = Path(tmp)
        utterances = write_corpus(root / "audio", seconds)
        peak, peak_source = device_peak(device, name, precision)
        coefficients = flop_model(model, device)
        flops = useful_flops(coefficients, seconds)
        run_encoder(model, [torch.zeros(16000)], device, precision)  # warm-up
        quarter = max(1, len(utterances) // 4)
        small_rss = float("nan")
        if not args.skip_quarter:
            _, _, small_rss, _ = product_extraction(model, utterances[:quarter], device, root / "cache-quarter", precision)
        wall, cpu, rss, features = product_extraction(model, utterances, device, root / "cache", precision)
        bare_wall, bare_cpu, bare_rss = bare_forward(model, utterances, device, precision)
        speed = f"{total / wall:.2f}"
        versus = ""
        if args.versus_fp32 and precision != "fp32":
            fp32_wall, *_ = product_extraction(model, utterances, device, root / "cache-fp32", "fp32")
            versus = f" ({fp32_wall / wall:.2f}x fp32's {total / fp32_wall:.2f} in this run)"

        achieved = flops / wall
        print(f"(a) serbench extraction: {wall:.1f} s for {total:.0f} s of audio = {speed}x real time{versus}")
        print(f"(a) useful compute: {achieved / 1e9:.1f} GFLOP/s ({flops / total / 1e9:.1f} GFLOP per audio second, FlopCounterMode)")
        print(f"(a) bare transformers forward, one by one: {bare_wall:.1f} s = {total / bare_wall:.2f}x real time; "
              f"serbench reaches {bare_wall / wall:.0%} of it")
        print(f"(a) CPU seconds (all threads; the steadier figure on a shared machine): serbench {cpu:.1f}, "
              f"bare {bare_cpu:.1f}: serbench reaches {bare_cpu / cpu:.0%} of it")
        mfu = f"{achieved / peak:.1%}" if peak else "n/a"
        print(f"(a) device peak: {peak / 1e9:.0f} GFLOP/s ({peak_source}); serbench at {mfu} of it"
              if peak else f"(a) device peak: {peak_source}")
        quarter_text = "skipped" if args.skip_quarter else f"{small_rss:.2f} GB for {quarter}"
        print(f"(a) peak RSS extracting: {rss:.2f} GB for {len(utterances)} utterances, {quarter_text}; "
              f"bare forward {bare_rss:.2f} GB; weights {weights_gb:.2f} GB (VmHWM)")

        b_text = "skipped"
        if not args.skip_b:
            labels = np.random.default_rng(1).integers(0, 4, seconds.size)
            placed = keep_on_device(features, device)  # serbench's rule: on the GPU when they fit in half its memory
            ordered = [placed[u.id] for u in utterances]
            t0 = time.perf_counter()
            steps = train_folds(model, None, sessions, labels, device, precision, epochs, args.batch_size, ordered)
            head_s = time.perf_counter() - t0
            cached_s = wall + head_s
            print(f"(b) 5-fold frozen benchmark with the cache: {cached_s:.1f} s "
                  f"(extraction {wall:.1f} s + {steps} head steps {head_s:.1f} s, {epochs} epochs per fold)")
            wavs = [torch.from_numpy(sf.read(u.path, dtype="float32")[0]) for u in utterances]
            t0 = time.perf_counter()
            taken = train_folds(model, wavs, sessions, labels, device, precision, epochs, args.batch_size, None, rerun_steps)
            per_step = (time.perf_counter() - t0) / max(taken, 1)
            rerun_s = per_step * steps_per_fold_set(sessions, epochs, args.batch_size)
            print(f"(b) same head, encoder re-run every step: {per_step:.2f} s per step over {taken} steps, "
                  f"projected to {steps} steps {rerun_s:.0f} s = {rerun_s / cached_s:.1f}x the cached benchmark (projection)")
            b_text = f"{cached_s:.0f} s cached vs {rerun_s:.0f} s re-run (projected), {rerun_s / cached_s:.1f}x"

    if args.results:
        write_results({
            "date (UTC)": started.strftime("%Y-%m-%d %H:%M"), "device": name, "precision": precision,
            "encoder": f"WavLM-{args.encoder}", "corpus": f"{seconds.size} utt, {total / 3600:.2f} h",
            "load at start": load.split(" on ")[0].removeprefix("load "),
            "x real time": speed + versus, "GFLOP/s": f"{achieved / 1e9:.1f}",
            "vs bare forward": f"{bare_wall / wall:.0%} (bare {total / bare_wall:.2f}x); CPU s {bare_cpu / cpu:.0%}",
            "vs peak": f"{mfu} of {peak / 1e9:.0f} GFLOP/s ({peak_source})" if peak else peak_source,
            "peak RSS (GB), all / quarter": f"{rss:.2f} / " + ("—" if args.skip_quarter else f"{small_rss:.2f}"),
            "(b) 5-fold": b_text,
        })
        print(f"results: row written to {RESULTS}")


if __name__ == "__main__":
    main()
