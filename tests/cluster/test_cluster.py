"""The cluster mode against a real local Ray cluster of two nodes: ingestion with Ray Data, the gateway
(`citeqa cluster serve`, a real uvicorn process) over shard actors with two replicas each."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from citeqa.answer import pipeline
from citeqa.cluster.serve import generation_name
from citeqa.eval import dataset, sets
from citeqa.index import sharding
from citeqa.index.building import sync_folder
from tests.support import ROOT, SETTINGS, chunk_params, new_engine
from tests.support import cluster as local_cluster
from tests.support.servers import free_port

pytestmark = pytest.mark.cluster
SHARDS, REPLICAS = 3, 2
CITEQA = str(Path(sys.executable).with_name("citeqa"))


@pytest.fixture(scope="module")
def ray_cluster():
    cluster = local_cluster.start()
    yield cluster
    cluster.stop()


def _env(cluster) -> dict:
    return {**os.environ, **cluster.env, "HF_HUB_OFFLINE": "1"}


def ingest(cluster, docs: Path, out: Path, shards: int = SHARDS) -> subprocess.CompletedProcess:
    return subprocess.run([CITEQA, "cluster", "ingest", "--docs", str(docs), "--out", str(out), "--shards",
                           str(shards)], env=_env(cluster), cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


class Gateway:
    def __init__(self, cluster, collection: Path, log: Path):
        port = free_port()
        self.url, self.log = f"http://127.0.0.1:{port}", log
        with log.open("ab") as f:
            self.proc = subprocess.Popen([CITEQA, "cluster", "serve", "--collection", str(collection),
                                          "--replicas", str(REPLICAS), "--port", str(port)],
                                         env=_env(cluster), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=f)
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the gateway did not become ready:\n{log.read_text(errors='replace')[-3000:]}")

    def ask(self, question: str, **more) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/ask", json={"question": question, **more}, timeout=60)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def single(tmp_path_factory, embedder):
    """Each eval collection as one index, built by `index build`'s code: what the cluster must equal."""
    built = {}

    def get(name: str):
        if name not in built:
            docs = sets.corpus(sets.find(name), Path("var/corpora"))
            data = tmp_path_factory.mktemp(f"single-{name}")
            sync_folder(data, docs, embedder, chunk_params(), progress=False)
            built[name] = (docs, data, new_engine(data, embedder).load())
        return built[name]

    return get


@pytest.fixture(scope="module")
def seeds_cluster(ray_cluster, single, tmp_path_factory):
    """The seeds ingested into three shards on the cluster, and a gateway over them."""
    docs, _, _ = single("seeds")
    out = tmp_path_factory.mktemp("collections") / "seeds-gen-1"
    done = ingest(ray_cluster, docs, out)
    assert done.returncode == 0, done.stderr[-3000:]
    gateway = Gateway(ray_cluster, out, out.with_name("seeds-gateway.log"))
    yield out, gateway
    gateway.stop()


def _rows(db: Path, table: str, doc_ids: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    key = "chunk_id" if table == "chunks" else "sentence_id"
    with sqlite3.connect(db) as con:
        rows = con.execute(f"SELECT {key}, doc_id, vector FROM {table} ORDER BY doc_id, position").fetchall()
    rows = [r for r in rows if doc_ids is None or r[1] in doc_ids]
    return [r[0] for r in rows], np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32)


def test_ingest_on_ray_makes_the_ids_and_vectors_of_index_build(seeds_cluster, single):
    out, _ = seeds_cluster
    _, data, engine = single("seeds")
    shard_map = sharding.load(out)
    placed = shard_map.partition(engine.snapshot().documents)
    assert sum(1 for ids in placed.values() if ids) >= 2  # the documents are spread, not all on one shard
    for name, doc_ids in placed.items():
        for table in ("chunks", "sentences"):
            want_ids, want = _rows(data / "citeqa.sqlite3", table, doc_ids)
            got_ids, got = _rows(out / name / "citeqa.sqlite3", table)
            assert got_ids == want_ids, f"{name}: other {table} than index build's"
            assert np.array_equal(got, want), f"{name}: {table} vectors differ from index build's"


def _same_answers(gateway: Gateway, engine, questions) -> list[str]:
    """The questions whose answer through the gateway is not exactly the single index's."""
    differ = []
    for q in questions:
        want = pipeline.ask(engine, q.question, threshold=SETTINGS.abstain_threshold, top_k=SETTINGS.top_k)
        got = gateway.ask(q.question)
        assert got.status_code == 200, got.text
        body = got.json()
        if (body["answer"], body["citations"], [(p["chunk_id"], p["score"]) for p in body["passages"]]) != (
                want.answer.answer, [c.as_dict() for c in want.answer.citations],
                [(p.chunk_id, p.score) for p in want.passages]):
            differ.append(q.question)
    return differ


def test_the_gateway_answers_the_seeds_questions_exactly_as_one_index(seeds_cluster, single):
    _, gateway = seeds_cluster
    _, _, engine = single("seeds")
    questions = dataset.load(sets.find("seeds").questions)
    assert _same_answers(gateway, engine, questions) == []


@pytest.mark.parametrize("name", ["htmldocs", "markdowndocs"])
def test_the_gateway_answers_each_eval_collection_exactly_as_one_index(name, ray_cluster, single,
                                                                        tmp_path_factory):
    docs, _, engine = single(name)
    out = tmp_path_factory.mktemp("collections") / f"{name}-gen-1"
    done = ingest(ray_cluster, docs, out)
    assert done.returncode == 0, done.stderr[-3000:]
    gateway = Gateway(ray_cluster, out, out.with_name(f"{name}-gateway.log"))
    try:
        assert _same_answers(gateway, engine, dataset.load(sets.find(name).questions)) == []
    finally:
        gateway.stop()


def test_the_eval_gate_passes_through_the_gateway(seeds_cluster, tmp_path):
    _, gateway = seeds_cluster
    done = subprocess.run([CITEQA, "eval", "--set", "seeds", "--url", gateway.url, "--no-baselines", "--check",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "every figure of seeds meets" in done.stdout


class Load:
    """Questions asked without pause on threads, each outcome kept: what a user of the gateway sees."""

    def __init__(self, gateway: Gateway, questions: list[str], threads: int = 3):
        self.gateway, self.questions = gateway, questions
        self.failed: list[str] = []
        self.asked = 0
        self.cited: list[tuple[float, set[str]]] = []  # (when the request began, documents cited)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    r = client.post(f"{self.gateway.url}/v1/ask", json={"question": rng.choice(self.questions)})
                except httpx.HTTPError as exc:
                    self.failed.append(repr(exc))
                    continue
                self.asked += 1
                if r.status_code != 200:
                    self.failed.append(f"{r.status_code} {r.text[:300]}")
                else:
                    self.cited.append((began, {c["doc_id"] for c in r.json()["citations"]}))

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=120)


def test_writes_through_the_gateway_are_read_at_once_and_deletes_never_cited(seeds_cluster, single):
    _, gateway = seeds_cluster
    _, _, engine = single("seeds")
    docs = list(engine.snapshot().documents.values())
    questions = [q.question for q in dataset.load(sets.find("seeds").questions)]
    deleted: dict[str, float] = {}  # doc_id -> when its DELETE returned
    with Load(gateway, questions) as load, httpx.Client(timeout=120) as client:
        for i in range(6):
            source = docs[i % len(docs)]
            doc_id = f"copy-{i}"
            r = client.post(f"{gateway.url}/v1/documents", json={"doc_id": doc_id, "title": source.title,
                                                                   "text": source.text})
            assert r.status_code == 201, r.text
            # Acknowledged: every replica reads it (the replicas answer in turn, so both are asked).
            for _ in range(2 * REPLICAS):
                assert client.get(f"{gateway.url}/v1/documents/{doc_id}").status_code == 200
                found = client.post(f"{gateway.url}/v1/ask", json={"question": questions[i], "doc_ids": [doc_id]})
                assert found.status_code == 200 and {p["doc_id"] for p in found.json()["passages"]} == {doc_id}
            r = client.delete(f"{gateway.url}/v1/documents/{doc_id}")
            assert r.status_code == 204, r.text
            deleted[doc_id] = time.monotonic()
            for _ in range(2 * REPLICAS):
                assert client.get(f"{gateway.url}/v1/documents/{doc_id}").status_code == 404
    assert load.failed == [] and load.asked > 20
    late = [(began, ids & set(deleted)) for began, ids in load.cited
            if any(d in ids and began > deleted[d] for d in deleted)]
    assert late == [], "answers cited documents deleted before they were asked"


def _actor_pid(cluster, name: str) -> int:
    script = ("import ray; ray.init(namespace='citeqa', logging_level='ERROR'); "
              f"print(ray.get(ray.get_actor({name!r}).pid.remote()))")
    done = subprocess.run([sys.executable, "-c", script], env=_env(cluster), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.strip().splitlines()[-1])


def test_killing_a_shard_replica_fails_no_request(seeds_cluster, ray_cluster):
    out, gateway = seeds_cluster
    questions = [q.question for q in dataset.load(sets.find("seeds").questions)]
    name = f"{generation_name(out)}/{sharding.load(out).shards[0]}/r0"
    pid = _actor_pid(ray_cluster, name)
    with Load(gateway, questions) as load:
        time.sleep(2)
        before = load.asked
        os.kill(pid, signal.SIGKILL)  # as a crash or an OOM kill would
        time.sleep(8)
    assert load.failed == []
    assert load.asked - before > 20  # questions went on being answered
    assert _actor_pid(ray_cluster, name) != pid  # Ray started the replica again


def test_a_new_generation_rolls_in_with_no_failed_request(seeds_cluster, ray_cluster, single):
    out, gateway = seeds_cluster
    new = out.with_name("seeds-gen-2")
    shutil.copytree(out, new)
    questions = [q.question for q in dataset.load(sets.find("seeds").questions)]
    with Load(gateway, questions) as load:
        time.sleep(1)
        r = httpx.post(f"{gateway.url}/v1/cluster/generation", json={"collection": str(new)}, timeout=300)
        time.sleep(2)
    assert r.status_code == 200, r.text
    assert r.json()["generation"] == generation_name(new) and r.json()["previous"] == generation_name(out)
    assert load.failed == [] and load.asked > 20
    _, _, engine = single("seeds")
    assert _same_answers(gateway, engine, dataset.load(sets.find("seeds").questions)[:10]) == []
