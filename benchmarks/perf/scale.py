"""Head training as the corpus grows: peak memory and time per epoch at 1, 5 and 20 hours.

For each size, synthetic features are written straight into serbench's feature-cache format
(:class:`serbench.run.cache.FeatureCache`, one checksummed ``.npy`` per utterance) as a
3-layer, 1024-wide encoder would leave them in float16 at 50 frames/s, with utterance
durations drawn from the real IEMOCAP list (/work/shared/reference/iemocap/emobox_iemocap.jsonl,
or ``--durations``). A fresh subprocess then does what a run's job does with a warm cache:
loads every entry through ``FeatureCache.load`` (checksums included) and
:func:`serbench.run.stored_features.release_maps`, and trains the ``superb`` head (built through
the plugin registry, ``ce`` loss) with serbench's own :class:`~serbench.run.batching.FeatureBatcher`
and :func:`~serbench.run.trainer.train_fold` (80/10/10 split, dev scored after every epoch).
A thread samples ``/proc/self/status`` every 0.1 s; per size the script prints peak RSS
(``VmHWM``), the largest anonymous and file-backed parts (``RssAnon``, ``RssFile``), the
time of each epoch and the GB of features. Each size's folder is deleted after it is
measured (``--keep`` keeps it). ``--mapped`` measures the old path (the memory maps kept) for
comparison: its file-backed RSS grows to the corpus, so use it only at sizes that fit in memory.

    python benchmarks/perf/scale.py --sizes 1,5,20 [--epochs 2] [--results] [--root DIR]

Goal (issue 27, item 4): peak RSS <= 4 GB at every size, time per epoch linear in hours.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DURATIONS = Path("/work/shared/reference/iemocap/emobox_iemocap.jsonl")
LAYERS, DIM, RATE, DTYPE = 3, 1024, 50.0, "float16"
CLASSES = ("ang", "hap", "neu", "sad")
MARK_BEGIN, MARK_END = "<!-- scale.py begin -->", "<!-- scale.py end -->"


def cache_key():
    from serbench.run.cache import CacheKey

    return CacheKey("synthetic-1024x3", "scale-benchmark", tuple(range(LAYERS)), DTYPE, DIM, RATE)


def read_durations(path: Path) -> np.ndarray:
    seconds = [float(json.loads(line)["length"]) for line in path.read_text().splitlines() if line.strip()]
    return np.asarray(seconds)


def write_corpus(folder: Path, hours: float, durations: np.ndarray, seed: int = 0) -> dict:
    """Utterances drawn (with replacement) from ``durations`` until ``hours`` of audio; each one's
    features (a class-dependent shift on noise, so the head has something to learn) written as a
    cache entry. Returns the index the child reads."""
    from serbench.run.cache import FeatureCache

    rng = np.random.default_rng(seed)
    cache = FeatureCache(folder, cache_key())
    longest = int(np.ceil(durations.max() * RATE)) + 1
    noise = rng.standard_normal((LAYERS, 2 * longest, DIM)).astype(np.float16)
    shifts = (rng.standard_normal((len(CLASSES), 1, 1, DIM)) * 0.5).astype(np.float16)
    entries, total, k = [], 0.0, 0
    while total < hours * 3600:
        seconds = float(rng.choice(durations))
        frames = max(1, int(round(seconds * RATE)))
        label = int(rng.integers(len(CLASSES)))
        start = int(rng.integers(0, noise.shape[1] - frames))
        array = noise[:, start : start + frames] + shifts[label, 0]
        content = hashlib.blake2b(f"scale {seed} {k}".encode(), digest_size=16).hexdigest()
        FeatureCache.write_array(cache.path(content), array)
        entries.append({"id": f"u{k:06d}", "hash": content, "label": CLASSES[label], "speaker": f"s{k % 10}",
                        "frames": frames})
        total += seconds
        k += 1
    index = {"hours": total / 3600, "entries": entries}
    (folder / "index.json").write_text(json.dumps(index))
    return index


class StatusSampler(threading.Thread):
    """Largest VmRSS, RssAnon and RssFile (kB) seen in /proc/self/status, every ``every`` s."""

    FIELDS = ("VmRSS", "RssAnon", "RssFile", "VmHWM")

    def __init__(self, every: float = 0.1):
        super().__init__(daemon=True)
        self.every, self.peak, self.stop = every, dict.fromkeys(self.FIELDS, 0), threading.Event()

    def sample(self) -> dict[str, int]:
        now = {}
        for line in Path("/proc/self/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in self.FIELDS:
                now[name] = int(value.split()[0])
        for name, value in now.items():
            self.peak[name] = max(self.peak[name], value)
        return now

    def run(self) -> None:
        while not self.stop.wait(self.every):
            self.sample()


def child(folder: Path, epochs: int, mapped: bool) -> dict:
    """Load the cache as a run does and train the superb head; figures as a dict."""
    import torch

    from serbench.api.downstream import DownstreamContext
    from serbench.api.protocol import Utterance
    from serbench.run.batching import FeatureBatcher
    from serbench.run.cache import FeatureCache
    from serbench.run.registry import create
    from serbench.run.stored_features import release_maps
    from serbench.run.trainer import TRAIN_PARAMS, FoldData, train_fold

    sampler = StatusSampler()
    sampler.start()
    index = json.loads((folder / "index.json").read_text())
    entries = index["entries"]
    utterances = {e["id"]: Utterance(id=e["id"], path=folder / f"{e['id']}.wav", label=e["label"], speaker=e["speaker"])
                  for e in entries}
    cache = FeatureCache(folder, cache_key())
    t0 = time.perf_counter()
    features = {e["id"]: cache.load(e["hash"], e["id"]) for e in entries}
    if any(a is None for a in features.values()):
        raise SystemExit(f"{folder}: some cache entries did not load")
    if not mapped:
        features = release_maps(features)
    load_s = time.perf_counter() - t0
    after_load = sampler.sample()
    ids = [e["id"] for e in entries]
    order = np.random.default_rng(1).permutation(len(ids))
    cut1, cut2 = int(0.8 * len(ids)), int(0.9 * len(ids))
    train, dev, test = ([ids[i] for i in order[a:b]] for a, b in ((0, cut1), (cut1, cut2), (cut2, len(ids))))
    counts = tuple(sum(utterances[i].label == c for i in train) for c in CLASSES)
    torch.manual_seed(0)
    context = DownstreamContext(num_layers=LAYERS, dim=DIM, frame_rate=RATE, classes=CLASSES,
                                make_pooling=lambda dim: create("pooling", "mean", dim), train_counts=counts, loss="ce")
    model = create("downstream", "superb", context)
    loss = create("loss", "ce", CLASSES, counts)
    params = {p.name: p.default for p in TRAIN_PARAMS} | {"max_epochs": epochs, "patience": epochs}
    batcher = FeatureBatcher(features, utterances, CLASSES, "cpu")
    data = FoldData(batcher, utterances, CLASSES, train, dev, test)
    marks = [time.perf_counter()]
    outcome = train_fold(model, loss, data, "ua", params, 0, torch.device("cpu"),
                         on_epoch=lambda epoch, score: marks.append(time.perf_counter()))
    sampler.stop.set()
    sampler.join()
    final = sampler.sample()
    test_ua = float(np.mean([np.mean(outcome.test_probs[[utterances[i].label == c for i in test]].argmax(1) == k)
                             for k, c in enumerate(CLASSES) if any(utterances[i].label == c for i in test)]))
    return {
        "hours": index["hours"],
        "utterances": len(entries),
        "feature_gb": sum((cache.path(e["hash"])).stat().st_size for e in entries) / 1e9,
        "load_s": load_s,
        "rss_after_load_gb": after_load["VmRSS"] / 1e6,
        "epoch_s": [b - a for a, b in zip(marks, marks[1:])],
        "peak_rss_gb": max(sampler.peak["VmHWM"], final["VmHWM"]) / 1e6,
        "peak_anon_gb": sampler.peak["RssAnon"] / 1e6,
        "peak_file_gb": sampler.peak["RssFile"] / 1e6,
        "test_ua": test_ua,
        "torch_threads": torch.get_num_threads(),
        "mapped": mapped,
    }


def measure(hours: float, root: Path, epochs: int, durations: np.ndarray, mapped: bool, keep: bool) -> dict:
    folder = root / f"scale-{hours:g}h"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        t0 = time.perf_counter()
        write_corpus(folder, hours, durations)
        write_s = time.perf_counter() - t0
        print(f"{hours:g} h: features written in {write_s:.0f} s; training in a fresh process", flush=True)
        command = [sys.executable, __file__, "--child", str(folder), "--epochs", str(epochs)] + (["--mapped"] if mapped else [])
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(f"{hours:g} h: the training process failed:\n{done.stderr[-4000:]}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        figures["write_s"] = write_s
        return figures
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def row(f: dict) -> str:
    epochs = ", ".join(f"{s:.1f}" for s in f["epoch_s"])
    per_hour = np.mean(f["epoch_s"]) / f["hours"]
    path = "memory maps kept (old)" if f["mapped"] else "stored, read per batch"
    return (f"| {f['hours']:.2f} | {f['utterances']} | {f['feature_gb']:.2f} | {path} | **{f['peak_rss_gb']:.2f}** | "
            f"{f['peak_anon_gb']:.2f} | {f['peak_file_gb']:.2f} | {f['load_s']:.0f} | {epochs} | {per_hour:.1f} | "
            f"{f['test_ua'] * 100:.1f} |")


HEADER = ("| hours | utterances | features GB | features held as | peak RSS GB | peak RssAnon GB | peak RssFile GB | "
          "load s | s per epoch | s per epoch per hour | test UA % |\n|---|---|---|---|---|---|---|---|---|---|---|")


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GB, torch {torch.__version__}, {torch.get_num_threads()} threads"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _row_key(line: str) -> tuple[float, str]:
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    return float(cells[0]), cells[3]


def write_results(rows: list[str], command: str, loads: list[str]) -> None:
    """Put ``rows`` into the scale section of RESULTS.md: a row of the same size and path is
    replaced, the others kept (sizes measured by separate invocations end up in one table),
    and the invocation is listed under the table."""
    path = ROOT / "benchmarks" / "perf" / "RESULTS.md"
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = path.read_text()
    kept, runs = {}, []
    if MARK_BEGIN in text and MARK_END in text:
        old = text.split(MARK_BEGIN, 1)[1].split(MARK_END, 1)[0]
        for line in old.splitlines():
            if line.startswith("| ") and not line.startswith("| hours"):
                kept[_row_key(line)] = line
            elif line.startswith("- `python benchmarks/perf/scale.py"):
                runs.append(line)
    kept.update({_row_key(line): line for line in rows})
    runs.append(f"- `{command}`: {stamp}, load average before each size {'; '.join(loads)}")
    ordered = [kept[k] for k in sorted(kept, key=lambda k: (k[1], k[0]))]
    section = "\n".join([
        MARK_BEGIN,
        "## Scale: head training over cached features (issue 27 item 4)",
        "",
        f"On {machine()}. Synthetic float16 features of a 3-layer, 1024-wide encoder at 50 frames/s in "
        "serbench's cache format, IEMOCAP utterance durations; the `superb` head (`ce`), batch 32, dev scored "
        "after every epoch, in a fresh process per size. Peak RSS is the process's VmHWM; RssAnon / RssFile are "
        "the largest values sampled every 0.1 s. \"load s\" is reading every entry through `FeatureCache.load` "
        "(checksums included). The machine is shared: timings were taken under the load stated below.",
        "",
        HEADER,
        *ordered,
        "",
        *runs,
        MARK_END,
    ])
    if MARK_BEGIN in text and MARK_END in text:
        before, rest = text.split(MARK_BEGIN, 1)
        text = before + section + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
    print(f"written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,5,20", help="hours of audio, comma-separated")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--root", type=Path, default=None, help="where each size's cache folder goes (default: a temporary folder)")
    parser.add_argument("--durations", type=Path, default=DURATIONS, help="EmoBox-style jsonl with a 'length' per line")
    parser.add_argument("--mapped", action="store_true", help="keep the memory maps (the old path), for comparison")
    parser.add_argument("--keep", action="store_true", help="keep each size's folder")
    parser.add_argument("--results", action="store_true", help="write the table into benchmarks/perf/RESULTS.md")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.epochs, args.mapped)))
        return
    durations = read_durations(args.durations)
    root = args.root or Path(tempfile.mkdtemp(prefix="serbench-scale-"))
    rows, loads = [], []
    try:
        for hours in (float(h) for h in args.sizes.split(",")):
            loads.append(f"{hours:g} h: {load_average()}")
            figures = measure(hours, root, args.epochs, durations, args.mapped, args.keep)
            rows.append(row(figures))
            print(json.dumps(figures), flush=True)
    finally:
        if args.root is None and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(HEADER)
    print("\n".join(rows))
    if args.results:
        command = "python benchmarks/perf/scale.py " + " ".join(sys.argv[1:])
        write_results(rows, command, loads)


if __name__ == "__main__":
    main()
