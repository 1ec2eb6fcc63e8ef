"""The golden run: metrics that a behaviour-preserving refactor must leave byte-identical.

Runs the README's main job (``serbench run --upstream fbank --downstream superb --protocol
synthetic``) and one small run per method of the smoke suite (``benchmarks/smoke.toml``: each
downstream with its upstream, 2 utterances per speaker and emotion, seed 0, at most 3 epochs
per training stage the method exposes through ``train.max_epochs``; gmp_atl smaller still), each as a fresh subprocess
into a fresh output folder, and writes every run's metrics (summary, overall, per-job metrics,
the predictions' digest, the run id) to one JSON file. ``--compare A B`` says whether two such
files are identical and, when not, where they first differ.

    python tools/golden.py --out /tmp/golden-before.json
    python tools/golden.py --compare /tmp/golden-before.json /tmp/golden-after.json

Why a subprocess per run: the refactor moves modules, so the command line a user types is
the one thing that must keep working unchanged; an in-process call would import the very
modules being moved.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
SMALL = ("-o", "protocol.per_class=2", "-o", "train.max_epochs=3", "--seeds", "0")
# gmp_atl fine-tunes the encoder through four stages: one utterance per speaker and emotion
# and one supervised epoch keep it to minutes on a shared CPU (at SMALL it takes ~20)
SMALLER = {"gmp_atl": ("-o", "protocol.per_class=1", "-o", "train.max_epochs=1", "--seeds", "0")}
# result.json keys that depend only on the computation, never on the clock or the machine
KEPT = ("run_id", "classes", "main_metric", "summary", "overall", "predictions_sha256")


def jobs() -> list[tuple[str, list[str]]]:
    """(name, serbench arguments) for the main job and every smoke-suite method."""
    out = [("main:fbank/superb", ["--upstream", "fbank", "--downstream", "superb", "--protocol", "synthetic"])]
    suite = tomllib.loads((ROOT / "benchmarks" / "smoke.toml").read_text(encoding="utf-8"))
    for entry in suite["matrix"]:
        for protocol in entry["protocols"]:
            for upstream in entry["upstreams"]:
                for downstream in entry["downstreams"]:
                    out.append((f"smoke:{upstream}/{downstream}",
                                ["--upstream", upstream, "--downstream", downstream, "--protocol", protocol,
                                 *SMALLER.get(downstream, SMALL)]))
    return out


def metrics_of(result: dict) -> dict:
    """The computed part of one result.json: summary, overall and every job's metrics."""
    kept = {key: result.get(key) for key in KEPT}
    kept["jobs"] = [{k: job.get(k) for k in ("fold", "seed", "n_train", "n_dev", "n_test", "metrics", "best_epoch")}
                    for job in result.get("folds", [])]
    return kept


def run_all(out_file: Path) -> None:
    golden: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="serbench-golden-") as tmp:
        for name, args in jobs():
            run_root = Path(tmp) / name.replace(":", "_").replace("/", "_")
            cmd = [sys.executable, "-m", "serbench", "run", *args, "--out", str(run_root), "--quiet"]
            print("$", " ".join(cmd[1:]), flush=True)
            done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"golden: {name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
            results = sorted(run_root.glob("*/result.json"))
            if len(results) != 1:
                sys.exit(f"golden: {name}: expected one result.json under {run_root}, found {len(results)}")
            golden[name] = metrics_of(json.loads(results[0].read_text(encoding="utf-8")))
    out_file.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"golden: {len(golden)} runs -> {out_file}")


def first_difference(a, b, where: str = "") -> str | None:
    """Path of the first place where a and b differ (None when identical)."""
    if type(a) is not type(b):
        return f"{where or '/'}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{where}/{key}: only in {'B' if key not in a else 'A'}"
            found = first_difference(a[key], b[key], f"{where}/{key}")
            if found:
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{where}: {a!r} vs {b!r}"


def compare(a: Path, b: Path) -> int:
    diff = first_difference(json.loads(a.read_text(encoding="utf-8")), json.loads(b.read_text(encoding="utf-8")))
    if diff is None:
        print(f"identical: {a} == {b}")
        return 0
    print(f"differ: {diff}")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", type=Path, help="write the golden metrics here")
    group.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), help="compare two golden files")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    run_all(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
