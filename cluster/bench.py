"""`citeqa cluster bench`: what the cluster mode costs against one process, side by side on one machine.

- CPU per answer: the same questions, one at a time, through `citeqa serve` over one index and through
  `citeqa cluster serve` over the same collection in shards on a local two-node Ray cluster. CPU is read
  from /proc for every process involved (the gateway, the Ray daemons and workers), less what they use
  idle over as long.
- Ingestion per core: `citeqa cluster ingest` (Ray Data) against as many plain processes as it has
  embedding actors, each cutting and embedding its share of the documents with one thread. Both sides are
  timed from the model's load to the last vector (parsing is left out of both).
- The floor of a fan-out: one round of empty calls to as many actors as shards, the CPU an answer pays
  for each round whatever the shards do; and the searches' own CPU, one index against the shards, in
  process.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

from citeqa.cluster import local
from citeqa.eval import dataset, sets
from citeqa.index.loading import SUFFIXES

MARK = re.compile(r"(<!-- bench:cluster -->\n).*?(<!-- /bench:cluster -->)", re.S)


def _cpu(procs: list[psutil.Process]) -> dict[int, float]:
    """Each live process's own CPU seconds. Not its children's: a process's children_* times jump when
    it reaps one (a raylet reaping the workers an ingestion left), which is no work of the window."""
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.Error:
            pass
    return out


def _spent(before: dict[int, float], procs: list[psutil.Process]) -> float:
    """CPU seconds `procs` used since `before` (a process started meanwhile counts from zero)."""
    return sum(t - before.get(pid, 0.0) for pid, t in _cpu(procs).items())


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


def _measure(url: str, questions: list[str], procs, rounds: int, clients: int = 1) -> dict:
    """CPU seconds per answer (less idle), latency and answers per second, over `rounds` passes of
    `questions` by `clients` at once (each asks its share one after another)."""
    with httpx.Client(timeout=60) as client:
        for q in questions[:10]:  # warm
            client.post(f"{url}/v1/ask", json={"question": q}).raise_for_status()
    asked = questions * rounds
    took: list[float] = []

    def ask_share(share: list[str]) -> None:
        with httpx.Client(timeout=60) as client:
            for q in share:
                t = time.perf_counter()
                client.post(f"{url}/v1/ask", json={"question": q}).raise_for_status()
                took.append((time.perf_counter() - t) * 1000)

    began_cpu, began = _cpu(procs()), time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(ask_share, [asked[i::clients] for i in range(clients)]))
    busy_cpu, wall = _spent(began_cpu, procs()), time.perf_counter() - began
    idle_began = _cpu(procs())
    time.sleep(min(wall, 20))
    idle = _spent(idle_began, procs()) / min(wall, 20) * wall
    n = len(took)
    return {"clients": clients, "answers": n, "cpu_ms_per_answer": round((busy_cpu - idle) / n * 1000, 2),
            "idle_cpu_ms_per_answer": round(idle / n * 1000, 2), "p50_ms": round(statistics.median(took), 1),
            "answers_per_s": round(n / wall, 1)}


def _both(url: str, questions: list[str], procs, rounds: int, clients: int) -> dict:
    return {"one": _measure(url, questions, procs, rounds),
            "many": _measure(url, questions, procs, rounds, clients)}


def _plain(docs: list[str], settings: dict, queue) -> None:
    try:
        from citeqa.index import building
        from citeqa.index.loading import parse
        from citeqa.service.config import Settings

        s = Settings(**settings)
        parsed = [parse(Path(p).read_bytes(), Path(p).name, source=p) for p in docs]
        # From the model's load on, as Ray's cut_and_embed counts its actors' start and load
        began = time.perf_counter()
        embedder = s.embedder(document_threads=1).load()
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


class _Empty:
    def call(self) -> None:
        return None


def call_floor(cluster: local.LocalCluster, shards: int, rounds: int = 500) -> dict:
    """CPU per round of `shards` empty actor calls made at once (this process and the cluster, less
    idle): what each round of an answer's fan-out costs before any shard does any work."""
    import ray

    ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
    try:
        actors = [ray.remote(_Empty).options(num_cpus=0).remote() for _ in range(shards)]

        def fan() -> None:
            ray.get([a.call.remote() for a in actors])

        for _ in range(50):
            fan()
        me = psutil.Process()
        before, began, mine = _cpu([me, *cluster.processes()]), time.perf_counter(), time.process_time()
        for _ in range(rounds):
            fan()
        busy, wall = _spent(before, [me, *cluster.processes()]), time.perf_counter() - began
        caller = time.process_time() - mine
        idle_began = _cpu(cluster.processes())  # this process sleeps meanwhile
        time.sleep(min(wall, 10))
        idle = _spent(idle_began, cluster.processes()) / min(wall, 10) * wall
        return {"shards": shards, "cpu_ms_per_round": round((busy - idle) / rounds * 1000, 2),
                "caller_cpu_ms_per_round": round(caller / rounds * 1000, 2)}
    finally:
        ray.shutdown()


def shard_work(single: Path, coll: Path, questions: list[str], model_cache: str, passes: int = 5) -> dict:
    """CPU per question of the searches themselves (statistics and candidates), in this process, with no
    calls: one index against the same collection in shards. Each shard keeps its own top n of each list,
    as one index does, so that the merged ranking equals one index's: that work does not split."""
    from citeqa.cluster.shard import ShardServer
    from citeqa.index import lexical, sharded, sharding
    from citeqa.index.snapshot import Totals
    from citeqa.service.config import Settings

    s = Settings(model_cache=model_cache)
    vectors = s.embedder().encode_queries(questions)
    n = sharded.depths("hybrid", s.top_k, s.search_depth)
    one = [ShardServer(single, {"model_cache": model_cache})]
    shards = [ShardServer(coll / name, {"model_cache": model_cache}) for name in sharding.load(coll).shards]

    def per_question(servers: list[ShardServer]) -> float:
        began = time.process_time()
        for q, v in zip(questions, vectors, strict=True):
            terms = lexical.tokenize([q])[0]
            totals = Totals.sum(srv.stats(terms, [])[0] for srv in servers)
            for srv in servers:
                srv.hits([(q, v, n, None, "hybrid", totals)])
        return (time.process_time() - began) / len(questions) * 1000

    times = [(per_question(one), per_question(shards)) for _ in range(passes)]  # the least: noise only adds
    return {"shards": len(shards), "one_index_ms": round(min(t[0] for t in times), 2),
            "shards_ms": round(min(t[1] for t in times), 2)}


def run(set_name: str, out_json: Path, docs_md: Path, rounds: int = 3, shards: int = 2, clients: int = 8
        ) -> dict:
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
        result["single"] = _both(f"http://127.0.0.1:{port}", questions, lambda: _tree([proc]), rounds,
                                 clients)
        single.terminate()
        single.wait(60)
        port = local.free_port()
        gateway = subprocess.Popen([citeqa, "cluster", "serve", "--collection", str(scratch / "coll"),
                                    "--replicas", "2", "--port", str(port)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        servers.append(gateway)
        wait_ready(f"http://127.0.0.1:{port}", gateway)
        gproc = psutil.Process(gateway.pid)
        result["cluster"] = _both(f"http://127.0.0.1:{port}", questions,
                                  lambda: _tree([gproc, *cluster.processes()]), rounds, clients)
        result["added_cpu_ms_per_answer"] = {load: round(
            result["cluster"][load]["cpu_ms_per_answer"] - result["single"][load]["cpu_ms_per_answer"], 2)
            for load in ("one", "many")}
        gateway.terminate()
        gateway.wait(60)
        result["call_floor"] = call_floor(cluster, shards)
        result["shard_work"] = shard_work(scratch / "single", scratch / "coll", questions, model_cache)
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
    s, c, i, added = r["single"], r["cluster"], r["ingestion"], r["added_cpu_ms_per_answer"]
    many = s["many"]["clients"]
    f = r.get("call_floor")
    floor = (f"One round of {f['shards']} empty actor calls made at once, the least each round of an "
             f"answer's fan-out costs: **{f['cpu_ms_per_round']} ms** of CPU "
             f"({f['caller_cpu_ms_per_round']} ms in the caller).\n\n") if f else ""
    w = r.get("shard_work")
    work = (f"The searches themselves (statistics and candidates), in one process with no calls: one "
            f"index **{w['one_index_ms']} ms** per question, {w['shards']} shards **{w['shards_ms']} ms**. "
            f"Each shard keeps its own top n of each list, as one index does, so that the merged ranking is "
            f"one index's: that work does not split.\n\n") if w else ""
    rows = [("CPU per answer, ms (less idle)", "cpu_ms_per_answer"),
            ("idle CPU over an answer's time, ms", "idle_cpu_ms_per_answer"),
            ("answer p50, ms", "p50_ms"), ("answers per second", "answers_per_s")]
    body = "".join(f"| {label} | {s['one'][key]} | {c['one'][key]} | {s['many'][key]} | {c['many'][key]} |\n"
                   for label, key in rows)
    return (f"Measured by `citeqa cluster bench` on this machine ({r['machine']}), set `{r['set']}`, "
            f"{r['shards']} shards x {r['replicas']} replicas on a two-node local Ray cluster:\n\n"
            f"| | one process, 1 client | cluster, 1 client | one process, {many} clients | "
            f"cluster, {many} clients |\n|---|---|---|---|---|\n{body}\n"
            f"The cluster adds **{added['one']} ms** of CPU per answer with one client, "
            f"**{added['many']} ms** with {many}.\n\n"
            f"{floor}{work}"
            f"Ingestion, cutting and embedding the same files with {i['workers']} workers: Ray Data "
            f"{i['ray_cut_and_embed_s']} s, plain processes {i['plain_cut_and_embed_s']} s: "
            f"**{i['ray_per_core_vs_plain']}** of the plain processes' speed per core.\n")
