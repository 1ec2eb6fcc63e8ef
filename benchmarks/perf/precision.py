"""What bf16 extraction costs in accuracy and saves in time (issue 27, item 3).

Saves a WavLM-shaped random-weight encoder (``bench.encoder``) with ``save_pretrained``, then
runs the same serbench command twice as a user types it, ``--upstream hf:FOLDER`` with
``-o upstream.precision=fp32`` and ``=bf16``, each with a feature cache of its own under
``--out`` (the first downstream measured extracts; a second reuses the features, as a user's
later runs would), and pairs the two runs with ``serbench compare``. Prints one markdown table for
benchmarks/perf/RESULTS.md. Random weights make the accuracy figures a measure of numerical
drift through the encoder, not of a trained model's sensitivity to bf16.

    python benchmarks/perf/precision.py --shape base --per-class 2
    python benchmarks/perf/precision.py --shape base --per-class 2 --downstream sap_gap
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import encoder  # noqa: E402  (the WavLM shapes bench.py measures)


def saved_encoder(shape: str, folder: Path) -> Path:
    """The random encoder of ``shape`` as a transformers folder (built once)."""
    if not (folder / "config.json").is_file():
        encoder(shape, torch.device("cpu")).model.save_pretrained(folder)
    return folder


def run(folder: Path, precision: str, args: argparse.Namespace, out: Path) -> dict:
    cache = out / f"cache-{precision}"  # one per precision: the first run extracts, a second downstream reuses
    command = ["serbench", "run", "--upstream", f"hf:{folder}", "--downstream", args.downstream,
               "--protocol", "synthetic", "-o", f"protocol.per_class={args.per_class}", "--seeds", "0",
               "-o", f"upstream.precision={precision}", "--out", str(out)] + [x for o in args.override for x in ("-o", o)]
    started = time.perf_counter()
    done = subprocess.run(command, env={**os.environ, "SERBENCH_CACHE": str(cache)}, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("result: "))
    result = Path(line.removeprefix("result: ").strip())
    data = json.loads(result.read_text())
    return {"dir": result.parent, "command": " ".join(command), "wall_s": time.perf_counter() - started,
            "features_s": data["timing"]["features_s"], "misses": data["cache"]["misses"], "summary": data["summary"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="base", choices=("small", "base", "large"))
    parser.add_argument("--per-class", type=int, default=2)
    parser.add_argument("--downstream", default="superb")
    parser.add_argument("-o", dest="override", action="append", default=[], help="further -o options for both runs")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "serbench-precision-encoder")
    parser.add_argument("--checkpoint", type=Path, help="a saved transformers encoder to measure instead of a random one")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "serbench-precision-runs")
    args = parser.parse_args()
    folder = args.checkpoint.resolve() if args.checkpoint else saved_encoder(args.shape, args.folder / args.shape)
    runs = {p: run(folder, p, args, args.out) for p in ("fp32", "bf16")}
    compared = args.out / f"compare-{args.downstream}-{args.shape}.json"
    subprocess.run(["serbench", "compare", str(runs["bf16"]["dir"]), "--baseline", str(runs["fp32"]["dir"]),
                    "--json", str(compared)], check=True, capture_output=True)
    row = json.loads(compared.read_text())["comparisons"][0]
    print(f"load {os.getloadavg()[0]:.2f} at the end; torch {torch.__version__}; {args.checkpoint or args.shape}, "
          f"{args.downstream}, synthetic per_class={args.per_class}\n")
    print("| precision | UA (%) | macro-F1 (%) | features (s) | utterances extracted | run wall (s) |\n"
          "|---|---|---|---|---|---|")
    for name, r in runs.items():
        print(f"| {name} | {r['summary']['ua']['mean'] * 100:.2f} | {r['summary']['macro_f1']['mean'] * 100:.2f} | "
              f"{r['features_s']:.1f} | {r['misses']} | {r['wall_s']:.1f} |")
    print(f"\nextraction speed-up bf16 over fp32: {runs['fp32']['features_s'] / runs['bf16']['features_s']:.2f}x")
    for metric in ("ua", "macro_f1"):
        m = row["metrics"][metric]
        print(f"bf16 - fp32 {metric}: {m['difference'] * 100:+.2f} pp, 95% CI [{m['ci95'][0] * 100:+.2f}, "
              f"{m['ci95'][1] * 100:+.2f}], p = {m['p']:.4f} (speaker-block permutation, {row['swaps']} swap sets)")
    for name, r in runs.items():
        print(f"{name}: {r['command']}")


if __name__ == "__main__":
    main()
