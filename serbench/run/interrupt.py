"""Ctrl-C that acts within seconds wherever the process is.

Python runs its SIGINT handler only between bytecodes of the main thread: inside one long
native call (a backward pass through a large encoder on a CPU, a k-means distance matrix)
KeyboardInterrupt waits until the call returns, which took minutes. A watcher thread is woken
by the signal itself (``signal.set_wakeup_fd`` writes from the C-level handler, whatever the
main thread is doing); if the process has not stopped ``grace`` seconds later, it ends it.
Nothing finished is lost: every file serbench writes is replaced atomically, and a job whose
owner ended is taken over by the next run (its claim names a dead process).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading

GRACE_S = 3.0


def stop_within_seconds(grace: float = GRACE_S) -> None:
    """Install the watcher (main thread only; a no-op elsewhere or when called twice)."""
    if threading.current_thread() is not threading.main_thread() or getattr(stop_within_seconds, "installed", False):
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    try:
        signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    except ValueError:
        return
    stop_within_seconds.installed = (reader, writer)  # type: ignore[attr-defined]  # kept open for the process

    def watch() -> None:
        while True:
            data = reader.recv(64)
            if not data:
                return
            if signal.SIGINT in data:
                threading.Event().wait(grace)  # the main thread normally stops by itself meanwhile
                print("serbench: interrupted during a long step; stopped now. Finished jobs are kept: rerun the "
                      "same command to resume", file=sys.stderr, flush=True)
                os._exit(130)

    threading.Thread(target=watch, name="serbench-interrupt", daemon=True).start()
