"""`citeqa cluster bench`: what the cluster mode costs against one process, side by side on one machine.

- CPU per answer: the same questions, one at a time, through `citeqa serve` over one index and through
  `citeqa cluster serve` over the same collection in shards on a local two-node Ray cluster. CPU is read
  from /proc for every process involved (the gateway, the Ray daemons and workers), less what they use
  idle over as long.
- Ingestion per core: `citeqa cluster ingest` (Ray Data) against as many plain processes as it has
  embedding actors, each cutting and embedding its share of the documents with one thread.
The figures go to a JSON file and into docs/cluster.md between its bench markers.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from citeqa.cluster import local
from citeqa.eval import dataset, sets
from citeqa.index.loading import SUFFIXES

MARK = re.compile(r"(<!-- bench:cluster -->\n).*?(<!-- /bench:cluster -->)", re.S)


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def _tree(roots: list[psutil.Process]) -> list[psutil.Process]:
    out = list(roots)
    for p in roots:
        try:
            out += p.children(recursive=True)
        except psutil.Error:
            pass
    return out


def wait_ready(url: str, proc: subprocess.Popen, seconds: float = 300) -> None:
    """Until `url`/readyz says 200; RuntimeError when `proc` exits first or the time runs out."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited")
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready in {seconds} s")


def _measure(url: str, questions: list[str], procs, rounds: int) -> dict:
    """CPU seconds per answer (less idle) and latency, over `rounds` passes of `questions`."""
    with httpx.Client(timeout=60) as client:
        for q in questions[:10]:  # warm
            client.post(f"{url}/v1/ask", json={"question": q}).raise_for_status()
        took, began_cpu, began = [], _cpu(procs()), time.perf_counter()
        for _ in range(rounds):
            for q in questions:
                t = time.perf_counter()
                client.post(f"{url}/v1/ask", json={"question": q}).raise_for_status()
                took.append((time.perf_counter() - t) * 1000)
        busy_cpu, wall = _cpu(procs()) - began_cpu, time.perf_counter() - began
    idle_began = _cpu(procs())
    time.sleep(min(wall, 20))
    idle = (_cpu(procs()) - idle_began) / min(wall, 20) * wall
    n = len(took)
    return {"answers": n, "cpu_ms_per_answer": round((busy_cpu - idle) / n * 1000, 2),
            "idle_cpu_ms_per_answer": round(idle / n * 1000, 2), "p50_ms": round(statistics.median(took), 1)}


def _plain(docs: list[str], settings: dict, queue) -> None:
    try:
        from citeqa.index import building
        from citeqa.index.loading import parse
        from citeqa.service.config import Settings

        s = Settings(**settings)
        embedder = s.embedder(document_threads=1).load()
        parsed = [parse(Path(p).read_bytes(), Path(p).name, source=p) for p in docs]
        began = time.perf_counter()
        cut = building.cut_units([d for d in parsed if d.content], embedder, s.chunk_params())
        building.embed(cut, embedder)
        queue.put(time.perf_counter() - began)
    except BaseException as exc:  # said to the parent, which would otherwise wait for ever
        queue.put(f"{type(exc).__name__}: {exc}")


def ingestion(docs_dir: Path, workers: int, settings: dict, env: dict, scratch: Path) -> dict:
    """Cut and embed time of the Ray pipeline against `workers` plain processes over the same files."""
    out = scratch / "ingested"
    done = subprocess.run([str(Path(sys.executable).with_name("citeqa")), "cluster", "ingest", "--docs",
                           str(docs_dir), "--out", str(out), "--shards", "2", "--embed-actors", str(workers)],
                          env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    ray_s = float(re.search(r"cut_and_embed ([\d.]+) s", done.stdout).group(1))
    paths = sorted(str(p) for p in docs_dir.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    sizes = sorted(((p, os.path.getsize(p)) for p in paths), key=lambda x: -x[1])
    shares: list[list[str]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for p, size in sizes:  # largest first, to the least loaded: the best split plain processes could have
        i = loads.index(min(loads))
        shares[i].append(p)
        loads[i] += size
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_plain, args=(share, settings, queue)) for share in shares]
    for p in procs:
        p.start()
    took = [queue.get(timeout=3600) for _ in procs]
    if any(isinstance(t, str) for t in took):
        raise RuntimeError(f"a plain process failed: {took}")
    plain_s = max(took)
    for p in procs:
        p.join()
    return {"workers": workers, "ray_cut_and_embed_s": ray_s, "plain_cut_and_embed_s": round(plain_s, 1),
            "ray_per_core_vs_plain": round(plain_s / ray_s, 3), "ray_ingest_stdout": done.stdout.strip()}


def run(set_name: str, out_json: Path, docs_md: Path, rounds: int = 3, shards: int = 2) -> dict:
    s = sets.find(set_name)
    docs_dir = sets.corpus(s, Path("var/corpora"))
    questions = [q.question for q in dataset.load(s.questions)]
    citeqa = str(Path(sys.executable).with_name("citeqa"))
    scratch = Path(tempfile.mkdtemp(prefix="citeqa-cluster-bench-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped run still stops its cluster
    cluster = local.start()
    env = {**os.environ, **cluster.env, "HF_HUB_OFFLINE": "1"}
    model_cache = str(Path(os.environ.get("CITEQA_MODEL_CACHE", "var/models")).resolve())
    env["CITEQA_MODEL_CACHE"] = model_cache
    result: dict = {"set": set_name, "shards": shards, "replicas": 2, "machine": f"{os.cpu_count()} cores"}
    servers = []
    try:
        subprocess.run([citeqa, "index", "build", "--docs", str(docs_dir), "--data", str(scratch / "single")],
                       env=env, check=True, capture_output=True, timeout=3600)
        subprocess.run([citeqa, "cluster", "ingest", "--docs", str(docs_dir), "--out", str(scratch / "coll"),
                        "--shards", str(shards), "--embed-actors", "2"], env=env, check=True,
                       capture_output=True, timeout=3600)
        port = local.free_port()
        single = subprocess.Popen([citeqa, "serve", "--data", str(scratch / "single"), "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        servers.append(single)
        wait_ready(f"http://127.0.0.1:{port}", single)
        proc = psutil.Process(single.pid)
        result["single"] = _measure(f"http://127.0.0.1:{port}", questions, lambda: _tree([proc]), rounds)
        single.terminate()
        single.wait(60)
        port = local.free_port()
        gateway = subprocess.Popen([citeqa, "cluster", "serve", "--collection", str(scratch / "coll"),
                                    "--replicas", "2", "--port", str(port)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        servers.append(gateway)
        wait_ready(f"http://127.0.0.1:{port}", gateway)
        gproc = psutil.Process(gateway.pid)
        result["cluster"] = _measure(f"http://127.0.0.1:{port}", questions,
                                     lambda: _tree([gproc, *cluster.processes()]), rounds)
        result["added_cpu_ms_per_answer"] = round(result["cluster"]["cpu_ms_per_answer"]
                                                  - result["single"]["cpu_ms_per_answer"], 2)
        gateway.terminate()
        gateway.wait(60)
        settings = {"model_cache": model_cache}
        result["ingestion"] = ingestion(docs_dir, 2, settings, env, scratch)
    finally:
        for p in servers:
            if p.poll() is None:
                p.kill()
        cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=2) + "\n")
    if docs_md.exists():
        docs_md.write_text(MARK.sub(lambda m: m.group(1) + table(result) + m.group(2), docs_md.read_text()))
    return result


def table(r: dict) -> str:
    s, c, i = r["single"], r["cluster"], r["ingestion"]
    return (f"Measured by `citeqa cluster bench` on this machine ({r['machine']}), set `{r['set']}`, "
            f"{r['shards']} shards x {r['replicas']} replicas on a two-node local Ray cluster:\n\n"
            "| | one process | cluster | \n|---|---|---|\n"
            f"| CPU per answer, ms (less idle) | {s['cpu_ms_per_answer']} | {c['cpu_ms_per_answer']} |\n"
            f"| idle CPU over an answer's time, ms | {s['idle_cpu_ms_per_answer']} | "
            f"{c['idle_cpu_ms_per_answer']} |\n"
            f"| answer p50, ms (one client) | {s['p50_ms']} | {c['p50_ms']} |\n\n"
            f"The cluster adds **{r['added_cpu_ms_per_answer']} ms** of CPU per answer.\n\n"
            f"Ingestion, cutting and embedding the same files with {i['workers']} workers: Ray Data "
            f"{i['ray_cut_and_embed_s']} s, plain processes {i['plain_cut_and_embed_s']} s: "
            f"**{i['ray_per_core_vs_plain']}** of the plain processes' speed per core.\n")
