"""The served API under measurement: a real `citeqa serve` process, timed from outside.

Cold start to /readyz, one client at a time over HTTP, and throughput under concurrent load from wrk
(a separate C process, so the load generator costs the server as little as possible).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from citeqa.bench.scale import status_mb


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    cold_start_s: float
    log: object  # the server's stderr, a temporary file: a pipe nobody reads would block it under load

    def peak_rss_mb(self) -> float:
        """The server's high-water mark of resident memory."""
        return status_mb("VmHWM", self.proc.pid)

    def rss_mb(self) -> float:
        """The server's resident memory now."""
        return status_mb("VmRSS", self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.log.close()


def start(data: Path, env: dict | None = None, timeout: float = 120) -> Server:
    """Starts `citeqa serve` over `data` and times it until /readyz says ready."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tempfile.TemporaryFile()
    began = time.perf_counter()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("citeqa")), "serve", "--port", str(port), "--data", str(data)],
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}, stdout=subprocess.DEVNULL, stderr=log)
    while time.perf_counter() - began < timeout:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"citeqa serve exited: {log.read().decode(errors='replace')[-2000:]}")
        try:
            if _all_ready(url, int((env or {}).get("CITEQA_WORKERS", "1"))):
                return Server(url, proc, time.perf_counter() - began, log)
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    log.close()
    raise RuntimeError(f"citeqa serve was not ready after {timeout:.0f} s")


def _all_ready(url: str, workers: int) -> bool:
    """Ready: one /readyz, or with several workers 8 per worker on new connections (any may take one)."""
    return all(httpx.get(f"{url}/readyz", timeout=1).status_code == 200
               for _ in range(1 if workers == 1 else 8 * workers))


def percentiles(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"n": len(ms), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p90_ms": round(float(np.percentile(a, 90)), 2), "p99_ms": round(float(np.percentile(a, 99)), 2),
            "mean_ms": round(float(a.mean()), 2)}


def sequential(url: str, questions: list[str], requests: int, warmup: int = 20) -> dict:
    """POST /v1/ask one request at a time over a kept-alive connection: the latency one user sees."""
    timings = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(warmup + requests):
            body = {"question": questions[i % len(questions)]}
            began = time.perf_counter()
            response = client.post("/v1/ask", json=body)
            elapsed = (time.perf_counter() - began) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"/v1/ask answered {response.status_code}: {response.text[:200]}")
            if i >= warmup:
                timings.append(elapsed)
    return percentiles(timings)


_LUA = """-- POST /v1/ask, cycling through the questions; each wrk thread starts at its own offset
local bodies = { %s }
local i = math.random(#bodies)
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "/v1/ask", {["Content-Type"] = "application/json"}, bodies[i])
end
"""


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk (make bench and make test do it)")
    return found


def load(url: str, questions: list[str], connections: int = 16, seconds: int = 10, threads: int = 1) -> dict:
    """wrk with `connections` concurrent clients for `seconds`: answered questions per second and latency."""
    bodies = ", ".join(f"[==[{json.dumps({'question': q})}]==]" for q in questions)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA % bodies)
    try:
        out = subprocess.run([wrk_path(), f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
                              "--timeout", "10s", "-s", script.name, url], capture_output=True, text=True,
                             check=True, timeout=seconds + 60).stdout
    finally:
        os.unlink(script.name)
    return parse_wrk(out) | {"connections": connections, "seconds": seconds}


def _process_cpu_s(pid: int) -> float:
    """User plus system CPU seconds of process `pid` and its live children (the workers of
    `--workers`), all their threads."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, summed over its cores, since boot."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK"), sum(ticks) / os.sysconf("SC_CLK_TCK")


def _batching(url: str) -> tuple[float, float]:
    """(model calls, questions embedded) so far, from the server's /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = dict(re.findall(r"^citeqa_(embed_batches|embedded_questions)_total ([\d.e+]+)$", text,
                            re.MULTILINE))
    return float(found["embed_batches"]), float(found["embedded_questions"])


def metered_load(server: Server, questions: list[str], connections: int = 16, seconds: int = 10) -> dict:
    """`load`, plus where the CPU went meanwhile: the server's and the whole machine's CPU time per
    answer, how busy the cores were, and the mean micro-batch. With the machine's cores all busy, the
    CPU per answer is what bounds throughput: cores / (CPU per answer)."""
    server_before, (busy_before, total_before) = _process_cpu_s(server.proc.pid), _machine_cpu_s()
    batches_before, embedded_before = _batching(server.url)
    result = load(server.url, questions, connections, seconds)
    server_cpu, (busy, total) = _process_cpu_s(server.proc.pid) - server_before, _machine_cpu_s()
    batches, embedded = _batching(server.url)
    cores = os.cpu_count() or 1
    answers = max(result["requests"], 1)
    result["cpu"] = {
        "server_ms_per_answer": round(server_cpu * 1000 / answers, 2),
        "machine_ms_per_answer": round((busy - busy_before) * 1000 / answers, 2),
        "machine_busy": round((busy - busy_before) / max(total - total_before, 1e-9), 3),
        "mean_batch": round((embedded - embedded_before) / max(batches - batches_before, 1), 2),
        "ceiling_per_s": round(cores * answers / max(busy - busy_before, 1e-9), 1),
    }
    return result


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return round(float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000}[unit], 2)


def parse_wrk(out: str) -> dict:
    """The figures of wrk's --latency report."""
    dist = dict(re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+\w+)\s*$", out, re.MULTILINE))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"requests": total, "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": _ms(dist["50"]), "p90_ms": _ms(dist["90"]), "p99_ms": _ms(dist["99"]),
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "socket_errors": sum(map(int, socket_errors.groups())) if socket_errors else 0}
