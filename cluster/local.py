"""A real local Ray cluster of two nodes (for the tests and `citeqa cluster bench`), on loopback addresses
of their own (Ray replaces 127.0.0.1 by the interface's address; 127.0.0.2 and .3 are kept), with its
own temp folder and ports, so it never meets another cluster on the machine. Stopped by killing exactly
the processes started under its folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from citeqa.bench.serving import free_port  # noqa: F401  (the bench and tests take ports from here too)

HEAD, NODE = "127.0.0.2", "127.0.0.3"


@dataclass
class LocalCluster:
    address: str
    temp: Path

    @property
    def env(self) -> dict[str, str]:
        return {"RAY_ADDRESS": self.address, "RAY_USAGE_STATS_ENABLED": "0"}

    def processes(self) -> list[psutil.Process]:
        """Every process of this cluster: its daemons, found by its folder in their command lines, and
        their children (the workers, whose names Ray rewrites to "ray::...")."""
        mine = [p for p in psutil.process_iter(["cmdline"])
                if any(str(self.temp) in part for part in (p.info["cmdline"] or []))]
        for p in list(mine):
            try:
                mine += p.children(recursive=True)
            except psutil.Error:
                pass
        return list({p.pid: p for p in mine}.values())

    def stop(self) -> None:
        mine = self.processes()
        for p in mine:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(mine, timeout=30)
        shutil.rmtree(self.temp, ignore_errors=True)


def _ray(*args: str, env: dict) -> None:
    ray = Path(sys.executable).with_name("ray")
    done = subprocess.run([str(ray), "start", *args], env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        said = f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        raise RuntimeError(f"ray start {' '.join(args)} failed:\n{said}")


def start(cpus_per_node: int = 2) -> LocalCluster:
    """Head on 127.0.0.2 and a second node on 127.0.0.3, `cpus_per_node` CPUs each, no dashboard."""
    temp = Path(tempfile.mkdtemp(prefix="citeqa-ray-", dir="/tmp"))  # short: Ray's socket paths have a limit
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    port = free_port()

    def common() -> list[str]:  # every port a node listens on its own: another cluster may be running
        return ["--num-cpus", str(cpus_per_node), "--object-store-memory", str(300 * 2**20),
                "--disable-usage-stats", f"--node-manager-port={free_port()}",
                f"--object-manager-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
                f"--dashboard-agent-grpc-port={free_port()}", f"--metrics-export-port={free_port()}",
                f"--runtime-env-agent-port={free_port()}"]

    cluster = LocalCluster(f"{HEAD}:{port}", temp)
    try:
        _ray("--head", f"--node-ip-address={HEAD}", f"--port={port}", "--include-dashboard=false",
             f"--temp-dir={temp / 'ray'}", *common(), env=env)
        _ray(f"--address={HEAD}:{port}", f"--node-ip-address={NODE}", f"--temp-dir={temp / 'ray'}", *common(),
             env=env)
    except BaseException:
        cluster.stop()
        raise
    deadline = time.time() + 60
    while time.time() < deadline:
        if _nodes(cluster) == 2:
            return cluster
        time.sleep(0.5)
    cluster.stop()
    raise RuntimeError("the second Ray node did not join in 60 s")


def _nodes(cluster: LocalCluster) -> int:
    script = "import ray; ray.init(logging_level='ERROR'); print(sum(n['Alive'] for n in ray.nodes()))"
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, **cluster.env},
                          capture_output=True, text=True, timeout=60)
    return int(done.stdout.strip() or 0)
