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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from citeqa.answer import pipeline
from citeqa.cluster import local as local_cluster
from citeqa.cluster.actors import RayPool
from citeqa.cluster.bench import wait_ready
from citeqa.cluster.serve import generation_name, shard_settings
from citeqa.cluster.shard import ShardServer
from citeqa.eval import dataset, sets
from citeqa.index import building, derived, sharding
from citeqa.index.errors import DocumentNotFound
from citeqa.index.loading import Skipped, make_document, read_folder
from citeqa.index.sections import indexed
from citeqa.index.snapshot import DB_NAME, INDEX_DIR, store_at
from tests.support import ROOT, SETTINGS, chunk_params, new_engine

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
                           str(shards), "--embed-actors", "2"], env=_env(cluster), cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


class Gateway:
    def __init__(self, cluster, collection: Path, log: Path):
        port = local_cluster.free_port()
        self.url, self.log = f"http://127.0.0.1:{port}", log
        with log.open("ab") as f:
            self.proc = subprocess.Popen([CITEQA, "cluster", "serve", "--collection", str(collection),
                                          "--replicas", str(REPLICAS), "--port", str(port)],
                                         env=_env(cluster), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=f)
        try:
            wait_ready(self.url, self.proc, 180)
        except RuntimeError as exc:
            self.stop()
            said = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the gateway did not become ready:\n{said}") from exc

    def ask(self, question: str, **more) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/ask", json={"question": question, **more}, timeout=60)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def collections(ray_cluster, tmp_path_factory):
    """Each eval collection ingested on the cluster (once), into SHARDS shards."""
    made = {}

    def get(name: str) -> tuple[Path, Path]:
        if name not in made:
            docs = sets.corpus(sets.find(name), Path("var/corpora"))
            out = tmp_path_factory.mktemp("collections") / f"{name}-gen-1"
            done = ingest(ray_cluster, docs, out)
            assert done.returncode == 0, done.stderr[-3000:]
            made[name] = (docs, out)
        return made[name]

    return get


def merged(collection: Path, data: Path, embedder):
    """One index holding every shard's stored rows, written as `index build` writes one: the single
    machine the cluster is compared with, without embedding the collection a second time (the ingestion
    test shows the shards hold what `index build` makes)."""
    store = store_at(data).create()
    with sqlite3.connect(data / DB_NAME) as con:
        for name in sharding.load(collection).shards:
            con.execute("ATTACH DATABASE ? AS shard", (str(collection / name / DB_NAME),))
            for table in ("documents", "chunks", "sentences"):
                con.execute(f"INSERT INTO {table} SELECT * FROM shard.{table}")
            con.execute("INSERT OR REPLACE INTO meta SELECT * FROM shard.meta")
            con.commit()
            con.execute("DETACH DATABASE shard")
    derived.write(store, data / INDEX_DIR)
    return new_engine(data, embedder).load()


@pytest.fixture(scope="module")
def seeds_cluster(collections, ray_cluster, tmp_path_factory, embedder):
    """The seeds on three shards, a gateway over them, and the single index they are compared with."""
    _, out = collections("seeds")
    engine = merged(out, tmp_path_factory.mktemp("single-seeds"), embedder)
    gateway = Gateway(ray_cluster, out, out.with_name("seeds-gateway.log"))
    yield out, gateway, engine
    gateway.stop()


def _rows(db: Path, table: str) -> tuple[list[tuple[str, str]], np.ndarray]:
    key = "chunk_id" if table == "chunks" else "sentence_id"
    with sqlite3.connect(db) as con:
        rows = con.execute(f"SELECT {key}, doc_id, vector FROM {table} ORDER BY doc_id, position").fetchall()
    matrix = np.frombuffer(b"".join(r[2] for r in rows), np.float32).reshape(len(rows), -1)
    return [(r[0], r[1]) for r in rows], matrix


def test_ingest_on_ray_makes_the_ids_and_vectors_of_index_build(collections, embedder):
    """HTML pages with navigation repeated across them: what is left out depends on the whole collection."""
    docs, out = collections("htmldocs")
    recipe = chunk_params().recipe(embedder.name) + embedder.recipe_tag
    cleaned, own = building.cleaned([d for d in read_folder(docs) if not isinstance(d, Skipped)], recipe)
    assert own, "no block repeats across these pages: the test would not show repetition is counted whole"
    cut = building.cut_units([d for d in cleaned if d.content], embedder, chunk_params())
    shard_map = sharding.load(out)
    want = {name: {"chunks": [], "sentences": []} for name in shard_map.shards}
    texts = {}
    for doc, chunks, sentences in cut:
        shard = want[shard_map.shard_of(doc.doc_id)]
        shard["chunks"] += [(c.chunk_id, c.doc_id) for c in chunks]
        shard["sentences"] += [(s.sentence_id, s.doc_id) for s in sentences]
        texts.update({c.chunk_id: indexed(c.section, c.text) for c in chunks})
        texts.update({s.sentence_id: indexed(s.section, s.text) for s in sentences})
    assert sum(1 for w in want.values() if w["chunks"]) >= 2  # spread over shards, not all on one
    rng = random.Random(0)
    for name in shard_map.shards:
        for table in ("chunks", "sentences"):
            got, vectors = _rows(out / name / DB_NAME, table)
            # stored in (doc_id, position) order
            assert got == sorted(want[name][table], key=lambda r: r[1]), f"{name}: other {table} ids"
            sample = rng.sample(range(len(got)), min(15, len(got)))
            again = embedder.encode([texts[got[i][0]] for i in sample])
            assert np.abs(vectors[sample] - again).max(initial=0) <= 1e-6, f"{name}: other {table} vectors"


def _same_answers(gateway: Gateway, engine, questions, clients: int = 1) -> list[str]:
    """The questions whose answer through the gateway is not exactly the single index's. With several
    `clients` asking at once, the gateway batches their calls to the shards (cluster/batching.py)."""
    wanted = [pipeline.ask(engine, q.question, threshold=SETTINGS.abstain_threshold, top_k=SETTINGS.top_k)
              for q in questions]
    with ThreadPoolExecutor(clients) as pool:
        replies = list(pool.map(lambda q: gateway.ask(q.question), questions))
    differ = []
    for q, want, got in zip(questions, wanted, replies, strict=True):
        assert got.status_code == 200, got.text
        body = got.json()
        if (body["answer"], body["citations"], [(p["chunk_id"], p["score"]) for p in body["passages"]]) != (
                want.answer.answer, [c.as_dict() for c in want.answer.citations],
                [(p.chunk_id, p.score) for p in want.passages]):
            differ.append(q.question)
    return differ


def test_the_gateway_answers_the_seeds_questions_exactly_as_one_index(seeds_cluster):
    _, gateway, engine = seeds_cluster
    questions = dataset.load(sets.find("seeds").questions)
    assert _same_answers(gateway, engine, questions) == []


@pytest.mark.parametrize("name", ["htmldocs", "markdowndocs"])
def test_the_gateway_answers_each_eval_collection_exactly_as_one_index(name, ray_cluster, collections,
                                                                        tmp_path_factory, embedder):
    _, out = collections(name)
    engine = merged(out, tmp_path_factory.mktemp(f"single-{name}"), embedder)
    gateway = Gateway(ray_cluster, out, out.with_name(f"{name}-gateway.log"))
    try:
        questions = dataset.load(sets.find(name).questions)
        assert _same_answers(gateway, engine, questions) == []
        assert _same_answers(gateway, engine, questions, clients=8) == []  # asked at once: batched calls
    finally:
        gateway.stop()


def test_the_eval_gate_passes_through_the_gateway(seeds_cluster, tmp_path):
    _, gateway, _ = seeds_cluster
    done = subprocess.run([CITEQA, "eval", "--set", "seeds", "--url", gateway.url, "--no-baselines",
                           "--check",
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
                    question = rng.choice(self.questions)
                    r = client.post(f"{self.gateway.url}/v1/ask", json={"question": question})
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


def test_writes_through_the_gateway_are_read_at_once_and_deletes_never_cited(seeds_cluster):
    _, gateway, engine = seeds_cluster
    docs = list(engine.snapshot().documents.values())
    questions = [q.question for q in dataset.load(sets.find("seeds").questions)]
    deleted: dict[str, float] = {}  # doc_id -> when its DELETE returned
    with Load(gateway, questions) as load, httpx.Client(timeout=120) as client:
        for i in range(4):
            source = docs[i % len(docs)]
            doc_id = f"copy-{i}"
            r = client.post(f"{gateway.url}/v1/documents",
                            json={"doc_id": doc_id, "title": source.title, "text": source.text})
            assert r.status_code == 201, r.text
            # Acknowledged: every replica reads it (the replicas answer in turn, so both are asked).
            for _ in range(2 * REPLICAS):
                assert client.get(f"{gateway.url}/v1/documents/{doc_id}").status_code == 200
                found = client.post(f"{gateway.url}/v1/ask",
                                    json={"question": questions[i], "doc_ids": [doc_id]})
                assert found.status_code == 200
                assert {p["doc_id"] for p in found.json()["passages"]} == {doc_id}
            r = client.delete(f"{gateway.url}/v1/documents/{doc_id}")
            assert r.status_code == 204, r.text
            deleted[doc_id] = time.monotonic()
            for _ in range(2 * REPLICAS):
                assert client.get(f"{gateway.url}/v1/documents/{doc_id}").status_code == 404
    assert load.failed == [] and load.asked > 20
    late = [(began, ids & set(deleted)) for began, ids in load.cited
            if any(d in ids and began > deleted[d] for d in deleted)]
    assert late == [], "answers cited documents deleted before they were asked"


def test_answers_after_a_write_weigh_words_as_the_collection_now_stands(seeds_cluster):
    """The gateway keeps the statistics of words it has seen between writes (cluster/termstats.py). A
    document holding every question's words changes them all: answers after it still equal one index's
    holding the same documents, so the kept statistics were read again."""
    _, gateway, engine = seeds_cluster
    questions = dataset.load(sets.find("seeds").questions)[:15]
    assert _same_answers(gateway, engine, questions) == []  # the gateway now holds these words
    text = "\n\n".join(q.question for q in questions)
    r = httpx.post(f"{gateway.url}/v1/documents", json={"doc_id": "asked", "title": "Asked", "text": text},
                   timeout=120)
    assert r.status_code == 201, r.text
    engine.put(make_document(text, "asked", "Asked"))
    try:
        assert _same_answers(gateway, engine, questions) == []
    finally:
        assert httpx.delete(f"{gateway.url}/v1/documents/asked", timeout=120).status_code == 204
        engine.delete("asked")


def _actor_pid(cluster, name: str) -> int:
    script = ("import ray; ray.init(namespace='citeqa', logging_level='ERROR'); "
              f"print(ray.get(ray.get_actor({name!r}).pid.remote()))")
    done = subprocess.run([sys.executable, "-c", script], env=_env(cluster), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.strip().splitlines()[-1])


def test_killing_a_shard_replica_fails_no_request(seeds_cluster, ray_cluster):
    out, gateway, _ = seeds_cluster
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


def test_a_new_generation_rolls_in_with_no_failed_request(seeds_cluster, ray_cluster):
    out, gateway, engine = seeds_cluster
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
    assert _same_answers(gateway, engine, dataset.load(sets.find("seeds").questions)[:10]) == []


class _DiesAfterDeleting(ShardServer):
    """A replica whose process ends after it committed a delete and before it answered: the worst moment."""

    def delete(self, doc_id: str) -> None:
        super().delete(doc_id)
        os._exit(1)


def test_a_delete_whose_replica_died_after_committing_it_succeeds(seeds_cluster, ray_cluster, tmp_path):
    """The pool sends the delete again to the other replica, which finds no such document: deleted."""
    import ray

    out, _, engine = seeds_cluster
    shard = sharding.load(out).shards[0]
    folder = shutil.copytree(out / shard, tmp_path / shard)
    settings = shard_settings(SETTINGS)
    ray.init(address=ray_cluster.address, logging_level="ERROR", log_to_driver=False)
    try:
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import tests/
        dying = ray.remote(_DiesAfterDeleting).options(max_restarts=0, num_cpus=0)
        plain = ray.remote(ShardServer).options(num_cpus=0)
        replicas = [dying.remote(str(folder), settings, True), plain.remote(str(folder), settings, True)]
        pool = RayPool([replicas])
        pool.ready()
        shard_map = sharding.load(out)
        doc_id = next(d for d in engine.snapshot().documents if shard_map.shard_of(d) == shard)
        assert pool.write(0, "delete", doc_id) is None  # replica 0 is first: it deletes, then dies
        assert pool.failovers >= 1
        assert pool.read(0, "document", doc_id) is None
        with pytest.raises(DocumentNotFound):  # with no crash, a missing document is still a 404
            RayPool([replicas[1:]]).write(0, "delete", doc_id)
    finally:
        ray.shutdown()
