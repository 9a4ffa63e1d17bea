"""An S3-compatible server for tests: moto's server in a child process on 127.0.0.1 (a free port),
stopped by its pid. ``query`` is what an ``s3://`` URI needs to reach it with pyarrow; the
credentials are the tests' own (tests/conftest.py sets them before any JVM starts)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class S3Server:
    host: str
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def query(self) -> str:
        """The ``s3://`` URI options that reach this server (pyarrow.fs)."""
        return f"endpoint_override={self.host}:{self.port}&scheme=http"

    def make_bucket(self, name: str) -> None:
        import pyarrow.fs as pafs

        fs, _ = pafs.FileSystem.from_uri(f"s3://{name}/x?{self.query}&allow_bucket_creation=true")
        fs.create_dir(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[S3Server]:
    """moto's S3 server in a child process, for the block; stopped (by its pid) at the end."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:  # up when it accepts connections
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto's S3 server did not start on 127.0.0.1:{port}")
            time.sleep(0.1)
        yield S3Server("127.0.0.1", port)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
