"""The parent's handle on one vLLM engine process (s2d/backends/vllm/serve.py), reached through a socket pair."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from multiprocessing.connection import Connection


class Worker:
    """One vLLM engine in a child process of ours (`python -m s2d.backends.vllm.serve FD`), reached through a
    socket pair. A plain subprocess, not multiprocessing: under Hydra's joblib launcher the parent's start method is
    loky's, which a multiprocessing child cannot re-create."""

    def __init__(self, env: dict[str, str], args: tuple):
        parent, child = socket.socketpair()
        self.conn = Connection(parent.detach())
        self.proc = subprocess.Popen([sys.executable, "-m", "s2d.backends.vllm.serve", str(child.fileno())],
                                     env={**os.environ, **env}, pass_fds=(child.fileno(),))
        child.close()
        self.conn.send(args)

    def receive(self, what: str):
        try:
            status, payload = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"{what}: the vLLM worker exited (exit code {self.proc.poll()}); "
                               "its log is above") from None
        if status == "error":
            raise RuntimeError(f"{what}: {payload}")
        return payload

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.conn.send(None)
                self.proc.wait(timeout=60)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.conn.close()
