"""`citeqa cluster ingest` on Ray Data: the steps of `citeqa index build`, spread over a cluster.

1. Files are read and parsed in tasks. Each document's block keys come back to the driver, which counts
   them: repetition (running headers, navigation) is a statistic of the whole collection.
2. CPU actors (each with the model's tokenizer) take the repeated blocks out and cut sentences and chunks.
3. An actor pool embeds them: one actor per CPU, with one ONNX thread each; on a cluster with GPUs, one
   actor per GPU running the model in fp16 (other vectors than a CPU build's: cosine about 0.9999).
4. When a shard will be large enough for IVF lists, they are trained once, on a sample of the embedded
   vectors, and every shard keeps them (index/vectors.py: still_fits).
5. Each shard is written in one task (group by shard): its SQLite store, FAISS indexes and BM25 postings.
Objects cross stages pickled, in binary columns: Ray Data moves them between nodes as Arrow bytes.
"""

from __future__ import annotations

import hashlib
import pickle
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np
import ray

from citeqa.cluster.ingest import check_out, write_shard
from citeqa.index import building, repetition, sharding, vectors
from citeqa.index.errors import InvalidInput, UnsupportedDocument
from citeqa.index.loading import SUFFIXES, Skipped, parse

SAMPLE_DOCS = 2000  # documents whose vectors IVF lists are trained on, at most (TRAIN_MAX vectors)


@dataclass
class IngestReport:
    documents: int = 0
    chunks: int = 0
    sentences: int = 0
    shards: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    embed_actors: int = 0
    gpu: bool = False


def _hash(key: str) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=8).digest()


def _settings(settings: dict):
    from citeqa.service.config import Settings

    return Settings(**settings)


def _parse(batch: dict) -> dict:
    out = {"path": [], "doc_id": [], "doc": [], "keys": [], "skip": []}
    for path in batch["path"]:
        path = str(path)
        try:
            doc = parse(Path(path).read_bytes(), Path(path).name, source=path)
        except (OSError, UnsupportedDocument, InvalidInput) as exc:
            doc, reason = None, getattr(exc, "message", None) or str(exc)
        out["path"].append(path)
        out["doc_id"].append(doc.doc_id if doc else "")
        out["doc"].append(pickle.dumps(doc) if doc else b"")
        out["keys"].append(b"".join(sorted(_hash(k) for k in repetition.block_keys(doc))) if doc else b"")
        out["skip"].append("" if doc else reason)
    return out


class _Cutter:
    """Takes the repeated blocks out and cuts units: needs only the tokenizer, no model session."""

    def __init__(self, settings: dict, repeated: set[bytes], dropped: set[str]):
        s = _settings(settings)
        self.embedder, self.params = s.embedder(), s.chunk_params()
        self.recipe = self.params.recipe(self.embedder.name) + self.embedder.recipe_tag
        self.repeated, self.dropped = repeated, dropped

    def __call__(self, batch: dict) -> dict:
        out = {"doc_id": [], "units": [], "own": [], "skip": []}
        for path, raw in zip(batch["path"], batch["doc"], strict=True):
            if not raw or str(path) in self.dropped:
                continue
            doc = pickle.loads(raw)
            mine = {k for k in repetition.block_keys(doc) if _hash(k) in self.repeated}
            doc, digest = repetition.without_repeated(doc, mine)
            out["doc_id"].append(doc.doc_id)
            out["own"].append(f"{self.recipe}|r{digest}" if digest else "")
            if not doc.content:
                out["units"].append(b"")
                out["skip"].append(str(path))
                continue
            out["units"].append(pickle.dumps(building.cut_units([doc], self.embedder, self.params)[0]))
            out["skip"].append("")
        return out


class _Embedder:
    """Embeds documents' units: on CPU through ONNX with one thread (one actor per core), on a GPU
    through torch in fp16."""

    def __init__(self, settings: dict, gpu: bool, shard_map: sharding.ShardMap):
        embedder = _settings(settings).embedder(document_threads=1)
        if gpu:
            embedder = embedder.variant(document_backend="torch", device="cuda")
            embedder.load().model.half()
        self.embedder, self.shard_map = embedder.load(), shard_map

    def __call__(self, batch: dict) -> dict:
        keep = [i for i, u in enumerate(batch["units"]) if u]  # a document with nothing to index is not
        cut = [pickle.loads(batch["units"][i]) for i in keep]
        prepared = building.embed(cut, self.embedder)
        return {"doc_id": [batch["doc_id"][i] for i in keep], "own": [batch["own"][i] for i in keep],
                "shard": [self.shard_map.owner[sharding.bucket_of(p.doc.doc_id)] for p in prepared],
                "prepared": [pickle.dumps(p) for p in prepared],
                "chunks": [len(p.chunks) for p in prepared],
                "sentences": [len(p.sentences) for p in prepared]}


def _write_group(batch: dict, out: str, settings: dict, names: tuple[str, ...], trained: dict | None) -> dict:
    s = _settings(settings)
    prepared = [pickle.loads(p) for p in batch["prepared"]]
    own = {d: o for d, o in zip(batch["doc_id"], batch["own"], strict=True) if o}
    shard = int(batch["shard"][0])
    lists = None if trained is None else {t: faiss.deserialize_index(b) for t, b in trained.items()}
    write_shard(Path(out) / names[shard], prepared, own, s.embedder(), s.chunk_params(), lists)
    return {"shard": [shard], "documents": [len(prepared)], "chunks": [sum(len(p.chunks) for p in prepared)],
            "sentences": [sum(len(p.sentences) for p in prepared)]}


def _shared_lists(embedded, counts: dict[int, tuple[int, int]], dim: int) -> dict | None:
    """IVF lists trained once on a sample, when the largest shard will hold enough vectors for them."""
    chunks = max(c for c, _ in counts.values())
    sentences = max(s for _, s in counts.values())
    kinds = {"chunks": vectors.kind_for(chunks), "sentences": vectors.kind_for(sentences, refinable=True)}
    if all(k == "flat" for k in kinds.values()):
        return None
    rows = embedded.random_sample(min(1.0, SAMPLE_DOCS / max(1, embedded.count())), seed=0).take_all()
    sample = [pickle.loads(r["prepared"]) for r in rows]
    out = {}
    for table, n, kind in (("chunks", chunks, kinds["chunks"]), ("sentences", sentences, kinds["sentences"])):
        if kind == "flat":
            continue
        vecs = np.concatenate([p.chunk_vectors if table == "chunks" else p.sentence_vectors for p in sample])
        picked = vecs[np.sort(np.random.default_rng(0).permutation(len(vecs))[:vectors.TRAIN_MAX])]
        index = vectors.empty(n, dim, lambda count, v=picked: v[:count], kind=kind)
        out[table] = faiss.serialize_index(index)
    return out


def build_on_ray(docs_dir: Path, out: Path, shards: int, settings: dict, embed_actors: int | None = None
                 ) -> IngestReport:
    """The collection of `docs_dir` as `shards` citeqa indexes in `out` (shared storage every node
    reaches), with `shards.json`. Runs on the cluster `ray.init` reached."""
    check_out(out, shards)
    docs_dir = Path(docs_dir)
    if not docs_dir.is_dir():
        raise InvalidInput(f"--docs {docs_dir}: no such folder")
    paths = sorted(str(p.resolve()) for p in docs_dir.rglob("*")
                   if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not paths:
        raise InvalidInput(f"--docs {docs_dir}: no .txt, .md or .html files in this folder")
    report, lap = IngestReport(shards=shards), time.perf_counter()
    resources = ray.cluster_resources()
    report.gpu = resources.get("GPU", 0) >= 1
    report.embed_actors = embed_actors or int(resources["GPU"] if report.gpu else max(1, resources["CPU"]))

    parsed = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=min(len(paths), 64)) \
        .map_batches(_parse, batch_size=16).materialize()
    seen: dict[str, str] = {}
    counts: Counter[bytes] = Counter()
    dropped: set[str] = set()
    found = parsed.select_columns(["path", "doc_id", "keys", "skip"]).take_all()
    for row in sorted(found, key=lambda r: r["path"]):  # in name order, as `index build` reads them
        if row["skip"]:
            report.skipped.append(Skipped(Path(row["path"]), row["skip"]))
        elif row["doc_id"] in seen:
            report.skipped.append(Skipped(Path(row["path"]), f"doc_id {row['doc_id']!r} already taken by "
                                                            f"{seen[row['doc_id']]}"))
            dropped.add(row["path"])
        else:
            seen[row["doc_id"]] = row["path"]
            keys = row["keys"]
            counts.update(keys[i:i + 8] for i in range(0, len(keys), 8))
    need = repetition.needed(len(seen))
    repeated = {k for k, n in counts.items() if need is not None and n >= need}
    report.seconds["parse"] = time.perf_counter() - lap
    lap = time.perf_counter()

    shard_map = sharding.even(shards)
    cpus = max(1, int(resources.get("CPU", 1)))
    # Materialized between stages: the embedding actors take every CPU, and a stage still running beside
    # them would wait for one forever.
    cut = parsed.map_batches(_Cutter, fn_constructor_args=(settings, repeated, dropped), batch_size=8,
                             compute=ray.data.ActorPoolStrategy(min_size=1, max_size=cpus), num_cpus=1
                             ).materialize()
    for row in cut.select_columns(["skip"]).take_all():
        if row["skip"]:
            report.skipped.append(Skipped(Path(row["skip"]), "no article text found in it"))
    gpu_args = {"num_gpus": 1} if report.gpu else {"num_cpus": 1}
    embedded = cut.map_batches(_Embedder, fn_constructor_args=(settings, report.gpu, shard_map),
                               batch_size=16, compute=ray.data.ActorPoolStrategy(size=report.embed_actors),
                               **gpu_args).materialize()
    report.seconds["cut_and_embed"] = time.perf_counter() - lap
    lap = time.perf_counter()

    per_shard: dict[int, tuple[int, int]] = {}  # shard -> (chunks, sentences)
    for row in embedded.select_columns(["shard", "chunks", "sentences"]).take_all():
        c, s = per_shard.get(int(row["shard"]), (0, 0))
        per_shard[int(row["shard"])] = (c + int(row["chunks"]), s + int(row["sentences"]))
    dim = _settings(settings).embedder().dim
    trained = _shared_lists(embedded, per_shard, dim) if per_shard else None
    written = embedded.groupby("shard").map_groups(
        _write_group, fn_kwargs={"out": str(out), "settings": settings, "names": shard_map.shards,
                                 "trained": trained}, num_cpus=1).take_all()
    empty = set(range(shards)) - {int(r["shard"]) for r in written}
    s = _settings(settings)
    for shard in sorted(empty):  # no document landed there: an empty index that takes writes
        write_shard(out / shard_map.shards[shard], [], {}, s.embedder(), s.chunk_params())
    sharding.save(shard_map, out)
    report.documents = sum(int(r["documents"]) for r in written)
    report.chunks = sum(int(r["chunks"]) for r in written)
    report.sentences = sum(int(r["sentences"]) for r in written)
    report.seconds["write"] = time.perf_counter() - lap
    return report
