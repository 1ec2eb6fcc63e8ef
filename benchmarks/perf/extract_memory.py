"""Peak RSS of serbench's extraction as the corpus grows: N utterances of 2 s each (WavLM
shape, random weights) through ``serbench.run.features.extract`` into a fresh feature cache,
for each N given. The peak is the kernel's high-water mark (VmHWM), reset before each
extraction; it includes the weights and torch itself.

    python benchmarks/perf/extract_memory.py base 8 32
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

from serbench.run.cache import CacheKey, FeatureCache  # noqa: E402
from serbench.run.features import extract  # noqa: E402


def main() -> None:
    shape, counts = sys.argv[1], [int(n) for n in sys.argv[2:]]
    model = bench.encoder(shape, torch.device("cpu"))
    layers = tuple(range(model.num_layers))
    for n in counts:
        with tempfile.TemporaryDirectory() as tmp:
            utterances = bench.write_corpus(Path(tmp) / "audio", np.full(n, 2.0))
            cache = FeatureCache(Path(tmp) / "cache", CacheKey("bench", "random", layers, "float16", model.dim,
                                                               model.frame_rate))
            bench.rss_reset()
            before = bench.rss_gb("VmRSS")
            t0 = time.perf_counter()
            features, _ = extract(model, utterances, torch.device("cpu"), layers, cache)
            print(f"WavLM-{shape}, {n} x 2 s: peak RSS {bench.rss_gb():.2f} GB (RSS before {before:.2f} GB), "
                  f"features {sum(a.nbytes for a in features.values()) / 1e9:.2f} GB, {time.perf_counter() - t0:.0f} s",
                  flush=True)


if __name__ == "__main__":
    main()
