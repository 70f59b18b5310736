"""Run the playground in a child process on 127.0.0.1: for tests, benchmarks and scripts.

``with ChildServer(data_dir) as srv: httpx.get(srv.url + "/healthz")`` starts
``python -m server`` on a free port, waits until ``/healthz`` answers, and always stops
the process on the way out.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChildServer:
    """``python -m server`` (or ``cmd``) in a child process, with PLAYGROUND_* settings."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        env: dict[str, str] | None = None,
        cmd: list[str] | None = None,
        port: int | None = None,
        log: Path | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = Path(data_dir)
        self.env = {
            **os.environ,
            "PLAYGROUND_HOST": "127.0.0.1",
            "PLAYGROUND_PORT": str(self.port),
            "PLAYGROUND_DATA_DIR": str(self.data_dir),
            "PLAYGROUND_LOG_LEVEL": "warning",
            **(env or {}),
        }
        self.cmd = cmd or [sys.executable, "-m", "server"]
        self.log = log or self.data_dir / f"server-{self.port}.log"
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None

    def start(self) -> ChildServer:
        """Start the process and wait until /healthz answers 200 (or raise with its log)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                self.cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {self.proc.returncode}:\n{self.log.read_text()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as res:
                    if res.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"no /healthz within {self.timeout:.0f} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        """Terminate the process (kill it if it does not go within 15 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)

    def __enter__(self) -> ChildServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
