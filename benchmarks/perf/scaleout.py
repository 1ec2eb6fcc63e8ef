"""Scale-out figures, side by side in one invocation on this machine:

1. ``serbench bench benchmarks/smoke.toml`` with the ``local`` executor at 1 and at 2 workers,
   each from an empty feature cache and output folder (the synthetic corpus generated
   beforehand, outside the timing);
2. each executor's start-up and per-job overhead: the main job (fbank / superb, synthetic
   per_class=4, 3 epochs) with the features already cached, with 1 seed (5 jobs) and with 3
   seeds (15 jobs), under ``local`` (in process), ``local`` with 2 workers, ``ray`` (a local
   Ray started by the run) and ``slurm`` (submitit's local executor). Per-job overhead is the
   slope over the 10 extra jobs minus the in-process slope; start-up is what is left of the
   5-job time. The metrics of every executor are compared with the in-process run's.

    python benchmarks/perf/scaleout.py [--skip-smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAIN = ["run", "--upstream", "fbank", "--downstream", "superb", "--protocol", "synthetic", "--quiet",
        "-o", "protocol.per_class=4", "-o", "train.max_epochs=3", "--device", "cpu"]
EXECUTORS = {
    "local (in process)": [],
    "local, 2 workers": ["-o", "executor.workers=2"],
    "ray, 1 task at a time (num_cpus=2)": ["--executor", "ray", "-o", "executor.local_cpus=2", "-o", "executor.num_cpus=2"],
    "ray, 2 tasks at a time (num_cpus=1)": ["--executor", "ray", "-o", "executor.local_cpus=2", "-o", "executor.num_cpus=1"],
    "slurm (submitit local), 1 at a time": ["--executor", "slurm", "-o", "executor.cluster=local", "-o", "executor.gpus=0",
                                            "-o", "executor.cpus=2", "-o", "executor.poll=0.2"],
}


def timed(command: list[str], env: dict, cwd: Path) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "serbench", *command], env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-smoke", action="store_true")
    args = parser.parse_args()
    print(f"# {platform.node()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at start, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = {**os.environ, "SERBENCH_CACHE": str(tmp / "corpus-cache")}
        timed([*MAIN, "--out", str(tmp / "warm")], corpus, ROOT)  # synthetic corpus + features, untimed
        if not args.skip_smoke:
            for workers in (1, 2):
                cache = tmp / f"smoke-cache-{workers}"
                subprocess.run(["cp", "-r", str(tmp / "corpus-cache"), str(cache)], check=True)
                for folder in cache.glob("features"):  # keep the generated corpus, drop the features
                    subprocess.run(["rm", "-rf", str(folder)], check=True)
                seconds = timed(["bench", "benchmarks/smoke.toml", "-o", f"executor.workers={workers}",
                                 "--out", str(tmp / f"smoke-{workers}"), "--leaderboard", str(tmp / f"smoke-{workers}.md")],
                                {**os.environ, "SERBENCH_CACHE": str(cache)}, ROOT)
                print(f"smoke.toml, local workers={workers}: {seconds:.1f} s")
            same = (tmp / "smoke-1.md").read_text().split("\n", 3)[3] == (tmp / "smoke-2.md").read_text().split("\n", 3)[3]
            print(f"smoke leaderboards identical: {same}")
        base = None
        for name, extra in EXECUTORS.items():
            times, metrics = [], {}
            for seeds in ("0", "0,1,2"):
                out = tmp / f"exec-{abs(hash(name))}-{len(seeds)}"
                times.append(timed([*MAIN, "--seeds", seeds, *extra, "--out", str(out)], corpus, ROOT))
                (run_dir,) = list(out.iterdir())
                metrics.update({p.name: json.loads(p.read_text())["metrics"]
                                for p in sorted((run_dir / "folds").glob("*.json"))})
            slope = (times[1] - times[0]) / 10
            if base is None:
                base, reference = (times[0], slope), metrics
                print(f"{name}: 5 jobs {times[0]:.1f} s, 15 jobs {times[1]:.1f} s ({slope:.2f} s per job)")
                continue
            per_job = slope - base[1]
            start = times[0] - base[0] - 5 * per_job
            print(f"{name}: 5 jobs {times[0]:.1f} s, 15 jobs {times[1]:.1f} s; per job {per_job:+.2f} s, "
                  f"start-up {start:+.1f} s; metrics identical: {metrics == reference}")


if __name__ == "__main__":
    main()
