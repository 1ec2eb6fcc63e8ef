"""``ray``: every unit of a run is one Ray task, on an existing cluster or a local one.

Connects to ``address`` (or ``$RAY_ADDRESS``); with neither, starts a local Ray on this
machine. Each unit (feature-extraction shards, then (fold, seed) jobs) is a task asking for
``num_cpus`` CPUs and ``num_gpus`` GPUs, calling the :class:`serbench.api.work.WorkUnit` it is
handed in a Ray worker: serbench must be installed on every node, and the run directory and
the feature cache must be on a filesystem they all see. A task that raises is retried
``max_retries`` times (``retry_exceptions``); one that still fails is reported, its traceback
kept in ``RUN_DIR/failed/``, and the other tasks finish. A task runs on ``cuda`` exactly when
``num_gpus`` > 0 (Ray hides the GPUs from a task that asks for none).

Given an address, Ray's own connection retries for many minutes when nothing answers there, so
the address is probed first, each step bounded by ``connect_timeout`` seconds (default 30): a
TCP connection and an HTTP/2 (gRPC) handshake, then ``ray.init`` in a child process that is
killed at the bound. A failure refuses the run naming the address and where it came from
(``-o executor.address`` or ``$RAY_ADDRESS``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from serbench.api.devices import worker_device
from serbench.api.errors import SerbenchError
from serbench.api.work import WorkUnit

_WORKER: dict[str, object] = {}  # a Ray worker process's own state: its units reuse the cache kept here


def _work(unit: WorkUnit, threads: int) -> str:
    import torch

    torch.set_num_threads(max(1, threads))
    return unit.cached_in(_WORKER)


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # + an empty SETTINGS frame
RAY_PORTS = {"ray://": 10001}  # Ray Client; a bare host is a GCS (port 6379)


def host_port(address: str) -> tuple[str, int]:
    """``host:port``, ``ray://host[:port]`` or ``[v6]:port`` as (host, port)."""
    scheme = "ray://" if address.startswith("ray://") else ""
    rest = address[len(scheme):].split("/", 1)[0]
    host, colon, port = rest.rpartition(":") if not rest.endswith("]") else (rest, "", "")
    if not colon:
        host, port = rest, str(RAY_PORTS.get(scheme, 6379))
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port or ray://host:port, got {address!r}")
    return host.strip("[]"), int(port)


def probe(address: str, timeout: float) -> str:
    """'' when a gRPC server answers at ``address`` within ``timeout`` seconds: it accepts a TCP
    connection and replies to the HTTP/2 preface with a SETTINGS frame, as Ray's GCS and Ray
    Client servers do; else why not."""
    try:
        host, port = host_port(address)
    except ValueError as exc:
        return str(exc)
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(HTTP2_PREFACE)
            head = b""
            while len(head) < 9:
                chunk = conn.recv(9 - len(head))
                if not chunk:
                    return "the connection was closed without an HTTP/2 answer: not a Ray cluster"
                head += chunk
    except socket.timeout:
        return f"no answer within {timeout:g} s"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    if head[3] != 4:  # the frame type: a gRPC server's first frame is its SETTINGS
        return "it answered, but not with HTTP/2 (gRPC): not a Ray cluster"
    return ""


class RayExecutor:
    def __init__(self, address: str, num_cpus: float, num_gpus: float, max_retries: int, local_cpus: int,
                 connect_timeout: float = 30.0):
        for option, value, positive in (("num_cpus", num_cpus, True), ("connect_timeout", connect_timeout, True),
                                        ("num_gpus", num_gpus, False), ("max_retries", max_retries, False),
                                        ("local_cpus", local_cpus, False)):
            if value < 0 or (positive and value == 0):
                raise SerbenchError(f"-o executor.{option}={value}: expected a number {'> 0' if positive else '>= 0'}")
        given = address or os.environ.get("RAY_ADDRESS", "")
        self.option = "-o executor.address" if address else "RAY_ADDRESS"  # where the address came from, for errors
        if any(ord(c) < 32 or ord(c) == 127 for c in given):
            raise SerbenchError(f"{self.option}={given!r}: holds a control character")
        self.address = given
        self.num_cpus, self.num_gpus, self.max_retries, self.local_cpus = num_cpus, num_gpus, max_retries, local_cpus
        self.connect_timeout = connect_timeout

    def _ray(self):
        try:
            import ray
        except ImportError:
            raise SerbenchError("--executor ray needs Ray: pip install 'serbench[ray]'") from None
        if not ray.is_initialized():
            if self.address and self.address != "local":
                self._check_reachable()
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.local_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False)
        return ray

    def _check_reachable(self) -> None:
        """Refuse, naming the address, when no Ray cluster answers there within ``connect_timeout``:
        a quick TCP + HTTP/2 probe (why a connection fails), then ``ray.init`` in a child process
        that is killed at the bound (Ray's own retries would otherwise go on for many minutes)."""
        shown = f"{self.option}={self.address}"
        if self.address != "auto":  # auto: the cluster this machine last joined, found by Ray itself
            why = probe(self.address, self.connect_timeout)
            if why:
                raise SerbenchError(f"{shown}: no Ray cluster reachable: {why} (-o executor.connect_timeout="
                                    f"{self.connect_timeout:g}); is the cluster up and the address right?")
        code = ("import sys, ray; ray.init(address=sys.argv[1], log_to_driver=False, logging_level='ERROR'); "
                "ray.shutdown()")
        try:
            done = subprocess.run([sys.executable, "-c", code, self.address], capture_output=True, text=True,
                                  timeout=self.connect_timeout, env={**os.environ, "RAY_ADDRESS": ""})
        except subprocess.TimeoutExpired:
            raise SerbenchError(f"{shown}: no Ray cluster answered within {self.connect_timeout:g} s (ray.init kept "
                                "retrying; -o executor.connect_timeout); is the cluster up and the address right?") from None
        if done.returncode != 0:
            lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
            raise SerbenchError(f"{shown}: ray.init failed: {(lines[-1] if lines else f'exit {done.returncode}')[:300]}")

    def slots(self, units: int) -> int:
        """Units that fit on the cluster at once (its GPUs or CPUs over what a task asks)."""
        resources = self._ray().cluster_resources()
        fits = resources.get("GPU", 0) / self.num_gpus if self.num_gpus else resources.get("CPU", 1) / self.num_cpus
        return max(1, min(units, int(fits)))

    def map(self, run_dir: Path, units: Sequence[WorkUnit], device: str, reporter) -> dict:
        device = worker_device(device, self.num_gpus, "-o executor.num_gpus")
        ray = self._ray()
        task = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=self.max_retries,
                          retry_exceptions=True)(_work)
        pending = {task.remote(unit.on(device), int(self.num_cpus)): unit for unit in units}
        failed: dict = {}
        with reporter.task(f"{len(units)} units on Ray", len(units)) as advance:
            while pending:
                (ready,), _ = ray.wait(list(pending), num_returns=1)
                unit = pending.pop(ready)
                try:
                    reporter.info(ray.get(ready))
                except ray.exceptions.RayTaskError as exc:  # after max_retries: reported, the others go on
                    cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                    failed[unit] = f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
                    reporter.info(f"{unit} failed: {failed[unit]}")
                advance(1)
        return failed
