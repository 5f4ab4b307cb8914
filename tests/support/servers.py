"""Real `citeqa serve` processes on free ports, over a data folder or a copy of one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from citeqa.bench.serving import free_port
from tests.support import ROOT


@dataclass
class Server:
    url: str
    data: Path
    env: dict
    proc: subprocess.Popen | None = None
    log: Path | None = None  # the server's stderr: its JSON log lines, one file for all its starts

    def start(self, wait: bool = True) -> Server:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = self.log or self.data.with_name(self.data.name + ".log")
        with self.log.open("ab") as log:  # a file, not a pipe nobody reads, which would fill and block
            self.proc = subprocess.Popen(
                [str(Path(sys.executable).with_name("citeqa")), "serve", "--port", str(port)], cwd=ROOT,
                env={**os.environ, "HF_HUB_OFFLINE": "1", "CITEQA_DATA_DIR": str(self.data), **self.env},
                stdout=subprocess.DEVNULL, stderr=log)
        return self.wait_ready() if wait else self

    def wait_ready(self, seconds: float = 120) -> Server:
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log_text()[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"server did not become ready in {seconds:.0f} s:\n{self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a crash or an OOM kill."""
        self.proc.kill()
        self.proc.wait(timeout=30)

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
