"""A real uvicorn process serving a copy of the seeds index, on a free port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    data: Path
    env: dict
    proc: subprocess.Popen | None = None

    def start(self) -> Server:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("citeqa")), "serve", "--port", str(port)], cwd=ROOT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "CITEQA_DATA_DIR": str(self.data), **self.env},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(self.proc.stderr.read().decode())
            time.sleep(0.2)
        raise RuntimeError("server did not become ready in 120 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def restart(self) -> Server:
        self.stop()
        return self.start()


def serve_copy(seeds_data: Path, tmp: Path, **env: str) -> Server:
    """A server over its own copy of the seeds index, so what it writes stays its own."""
    data = tmp / "data"
    shutil.copytree(seeds_data, data)
    return Server("", data, env).start()


@pytest.fixture(scope="session")
def server(seeds_data):
    """Read-only use: the seeds index as built, shared by every test that does not write."""
    srv = Server("", seeds_data, {}).start()
    yield srv.url
    srv.stop()
