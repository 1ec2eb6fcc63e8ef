"""Wall time and peak memory of the five demo commands, side by side in one invocation.

Each command runs as a user types it (``serbench run ... --protocol synthetic``), in its own
process, into a fresh output folder, with the corpus already generated and the feature cache
warm (the first command is run once beforehand for that). A command still running after
``--limit`` seconds is stopped and reported as such.

    python benchmarks/perf/demo_times.py [--limit 600] [--only superb,sap_gap]
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    "superb": ["--upstream", "fbank", "--downstream", "superb"],
    "sap_gap": ["--upstream", "fbank", "--downstream", "sap_gap"],
    "wap_la": ["--upstream", "fbank", "--downstream", "wap_la"],
    "wavlm_cond": ["--upstream", "tiny", "--downstream", "wavlm_cond"],
    "gmp_atl": ["--upstream", "tiny", "--downstream", "gmp_atl"],
}


def run(args: list[str], out: str, limit: float) -> tuple[float, float | None, bool, str]:
    """(wall seconds, peak RSS in GB or None, finished, UA line)."""
    command = [sys.executable, "-m", "serbench", "run", *args, "--protocol", "synthetic", "--out", out, "--quiet"]
    wrapped = ["/usr/bin/time", "-f", "MAXRSS_KB %M", *command] if os.path.exists("/usr/bin/time") else command
    t0 = time.perf_counter()
    process = subprocess.Popen(wrapped, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the whole group: time and serbench under it
        process.communicate()
        return time.perf_counter() - t0, None, False, ""
    wall = time.perf_counter() - t0
    peak = next((int(line.split()[1]) / 1e6 for line in stderr.splitlines() if line.startswith("MAXRSS_KB")), None)
    ua = next((line for line in stdout.splitlines() if "UA" in line), "").strip()
    return wall, peak, process.returncode == 0, ua


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=float, default=600.0, help="seconds after which a command is stopped")
    parser.add_argument("--only", help="comma-separated subset of " + ",".join(COMMANDS))
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(COMMANDS)
    load = os.getloadavg()[0]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {load:.2f} at start")
    with tempfile.TemporaryDirectory() as warm:
        run(COMMANDS["superb"], warm, args.limit)  # corpus generated and fbank cache filled
    rows = []
    for name in names:
        with tempfile.TemporaryDirectory() as out:
            wall, peak, finished, ua = run(COMMANDS[name], out, args.limit)
        rows.append((name, wall, peak, finished, ua))
        print(f"{name}: {wall:.1f} s, peak RSS {peak if peak is None else f'{peak:.2f} GB'}, "
              f"{'finished' if finished else f'stopped at the {args.limit:.0f} s limit'} {ua}", flush=True)
    base = next((wall for name, wall, _, finished, _ in rows if name == "superb" and finished), None)
    print("\n| command | wall (s) | x superb | peak RSS (GB) | UA |\n|---|---|---|---|---|")
    for name, wall, peak, finished, ua in rows:
        ratio = f"{wall / base:.1f}" if base and finished else ("n/a" if finished else f"> {wall / base:.1f}" if base else "n/a")
        shown = f"{wall:.0f}" if finished else f"> {wall:.0f} (stopped)"
        score = ua.split("│")[2].strip() if ua.count("│") > 2 else ""
        print(f"| {' '.join(COMMANDS[name])} | {shown} | {ratio} | {'' if peak is None else f'{peak:.2f}'} | {score} |")


if __name__ == "__main__":
    main()
