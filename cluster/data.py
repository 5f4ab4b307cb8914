"""`citeqa cluster ingest` on Ray Data: the steps of `citeqa index build`, spread over a cluster.

1. Files are read and parsed in tasks. Each document's block keys come back to the driver, which counts
   them: repetition (running headers, navigation) is a statistic of the whole collection.
2. CPU actors (each with the model's tokenizer) take the repeated blocks out and cut sentences and chunks.
3. Their texts are sorted by length over the whole collection, and an actor pool embeds them in pieces:
   one actor per CPU, with one ONNX thread each; on a cluster with GPUs, one actor per GPU running the
   model in fp16 (other vectors than a CPU build's: cosine about 0.9999).
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
from ray.data.context import ShuffleStrategy

from citeqa.cluster.ingest import check_out, write_shard
from citeqa.index import building, repetition, sharding, vectors
from citeqa.index.errors import InvalidInput, UnsupportedDocument
from citeqa.index.loading import FORMATS, SUFFIXES, Skipped, parse

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


PIECE = 256  # texts an embedding call takes at most: the unit of work the actors share
BALANCE = 16  # pieces per embedding actor, at least
SAMPLE_LENGTHS = 100_000  # texts whose lengths set where the sorted pieces begin


def _row(doc_id: str, shard: int, kind: str, piece: int, payload: bytes, own: str = "", chunks: int = 0,
         sentences: int = 0) -> dict:
    """One row of the stream the shards are written from: a document's units, or a piece of its vectors."""
    return {"doc_id": doc_id, "shard": shard, "kind": kind, "piece": piece, "payload": payload, "own": own,
            "chunks": chunks, "sentences": sentences}


def _rows(items: list[dict]) -> dict:
    keys = ("doc_id", "shard", "kind", "piece", "payload", "own", "chunks", "sentences")
    return {k: [item[k] for item in items] for k in keys}


class _Cutter:
    """Takes the repeated blocks out and cuts units: needs only the tokenizer, no model session."""

    def __init__(self, settings: dict, repeated: set[bytes], dropped: set[str], shard_map: sharding.ShardMap):
        s = _settings(settings)
        self.embedder, self.params = s.embedder(), s.chunk_params()
        self.recipe = self.params.recipe(self.embedder.name) + self.embedder.recipe_tag
        self.repeated, self.dropped, self.shard_map = repeated, dropped, shard_map

    def __call__(self, batch: dict) -> dict:
        out = []
        for path, raw in zip(batch["path"], batch["doc"], strict=True):
            if not raw or str(path) in self.dropped:
                continue
            doc = pickle.loads(raw)
            mine = {k for k in repetition.block_keys(doc) if _hash(k) in self.repeated}
            doc, digest = repetition.without_repeated(doc, mine)
            shard = self.shard_map.owner[sharding.bucket_of(doc.doc_id)]
            if not doc.content:  # nothing to index: reported as skipped, as `index build` does
                out.append(_row(doc.doc_id, shard, "skipped", -1, str(path).encode()))
                continue
            cut = building.cut_units([doc], self.embedder, self.params)[0]
            out.append(_row(doc.doc_id, shard, "units", -1, pickle.dumps(cut),
                            f"{self.recipe}|r{digest}" if digest else "", len(cut[1]), len(cut[2])))
        return _rows(out)


def _texts(row: dict) -> list[dict]:
    """A document's texts to embed, one row each with its length (in characters, as Embedder.encode sorts)."""
    if row["kind"] != "units":
        return []
    texts = building.unit_texts([pickle.loads(row["payload"])])
    return [{"doc_id": row["doc_id"], "shard": row["shard"], "pos": i, "text": t, "length": len(t)}
            for i, t in enumerate(texts)]


def _boundaries(texts, n: int, pieces: int) -> list[int]:
    """Lengths that cut the `n` texts into about `pieces` parts of equal work (their total length), from a
    sample: a piece of long texts holds fewer of them."""
    sample = texts.select_columns(["length"])
    if n > SAMPLE_LENGTHS:
        sample = sample.random_sample(SAMPLE_LENGTHS / n, seed=0)
    lengths = np.sort([r["length"] for r in sample.take_all()])
    if not len(lengths):
        return []
    work = np.cumsum(lengths)
    cuts = lengths[np.minimum(np.searchsorted(work, np.arange(1, pieces) * work[-1] / pieces), len(work) - 1)]
    return sorted({int(c) for c in cuts})


class _Embedder:
    """Embeds pieces of texts of about one length: on CPU through ONNX with one thread (one actor per core),
    on a GPU through torch in fp16."""

    def __init__(self, settings: dict, gpu: bool):
        embedder = _settings(settings).embedder(document_threads=1)
        if gpu:
            embedder = embedder.variant(document_backend="torch", device="cuda")
            embedder.load().model.half()
        self.embedder = embedder.load()

    def __call__(self, batch: dict) -> dict:
        vecs = np.ascontiguousarray(self.embedder.encode(list(batch["text"]), release=True), np.float32)
        return _rows([_row(doc_id, int(shard), "vectors", int(pos), vec.tobytes())
                      for doc_id, shard, pos, vec in zip(batch["doc_id"], batch["shard"], batch["pos"], vecs,
                                                         strict=True)])


def _prepared(rows: dict, dim: int) -> tuple[list, dict[str, str]]:
    """Documents' units and their texts' vectors, put together (building.embed with the vectors given)."""
    units, own, vecs_at = {}, {}, {}
    for doc_id, kind, piece, payload, o in zip(rows["doc_id"], rows["kind"], rows["piece"],
                                               rows["payload"], rows["own"], strict=True):
        if kind == "units":
            units[doc_id] = pickle.loads(payload)
            if o:
                own[doc_id] = o
        elif kind == "vectors":
            vecs_at.setdefault(doc_id, []).append((int(piece), payload))  # piece: the text's position
    out = []
    for doc_id in sorted(units):
        joined = b"".join(b for _, b in sorted(vecs_at[doc_id]))
        vecs = np.frombuffer(joined, dtype=np.float32).reshape(-1, dim)
        out += building.embed([units[doc_id]], None, vecs=vecs)
    return out, own


def _write_group(batch: dict, out: str, settings: dict, names: tuple[str, ...], trained: dict | None) -> dict:
    s = _settings(settings)
    embedder = s.embedder()
    prepared, own = _prepared(batch, embedder.dim)
    shard = int(batch["shard"][0])
    lists = None if trained is None else {t: faiss.deserialize_index(b) for t, b in trained.items()}
    write_shard(Path(out) / names[shard], prepared, own, embedder, s.chunk_params(), lists)
    return {"shard": [shard], "documents": [len(prepared)], "chunks": [sum(len(p.chunks) for p in prepared)],
            "sentences": [sum(len(p.sentences) for p in prepared)]}


def _shared_lists(rows, counts: dict[int, tuple[int, int]], dim: int) -> dict | None:
    """IVF lists trained once on a sample, when the largest shard will hold enough vectors for them."""
    chunks = max(c for c, _ in counts.values())
    sentences = max(s for _, s in counts.values())
    kinds = {"chunks": vectors.kind_for(chunks), "sentences": vectors.kind_for(sentences, refinable=True)}
    if all(k == "flat" for k in kinds.values()):
        return None
    docs = sorted({r["doc_id"] for r in rows.filter(lambda r: r["kind"] == "units").select_columns(["doc_id"])
                   .take_all()})
    picked = set(np.random.default_rng(0).permutation(docs)[:SAMPLE_DOCS].tolist())
    sample, _ = _prepared(_rows(rows.filter(lambda r: r["doc_id"] in picked).take_all()), dim)
    out = {}
    for table, n, kind in (("chunks", chunks, kinds["chunks"]), ("sentences", sentences, kinds["sentences"])):
        if kind == "flat":
            continue
        vecs = np.concatenate([p.chunk_vectors if table == "chunks" else p.sentence_vectors for p in sample])
        chosen = vecs[np.sort(np.random.default_rng(0).permutation(len(vecs))[:vectors.TRAIN_MAX])]
        index = vectors.empty(n, dim, lambda count, v=chosen: v[:count], kind=kind)
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
        raise InvalidInput(f"--docs {docs_dir}: no {FORMATS} files in this folder")
    report, lap = IngestReport(shards=shards), time.perf_counter()
    context = ray.data.DataContext.get_current()
    # Blocks in order: the longest texts' pieces go to the actors first, so none is left with one at the end
    context.execution_options.preserve_order = True
    # Ray 2.60's default shuffle (SHUFFLE_V2) spent 4-6 s of wall time on any sort, repartition or groupby,
    # however small; the pull-based sort shuffle 0.2-0.3 s (4,649 rows, two-node cluster on 2 cores).
    context.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    resources = ray.cluster_resources()
    report.gpu = resources.get("GPU", 0) >= 1
    free = ray.available_resources()  # what serving (or another job) leaves
    report.embed_actors = embed_actors or int(free.get("GPU", 0) if report.gpu
                                              else max(1, free.get("CPU", 1)))

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
    cut = parsed.map_batches(_Cutter, fn_constructor_args=(settings, repeated, dropped, shard_map),
                             batch_size=4, compute=ray.data.ActorPoolStrategy(min_size=1, max_size=cpus),
                             num_cpus=1).materialize()
    units = cut.filter(lambda r: r["kind"] != "skipped")
    for row in cut.filter(lambda r: r["kind"] == "skipped").select_columns(["payload"]).take_all():
        report.skipped.append(Skipped(Path(row["payload"].decode()), "no article text found in it"))
    report.seconds["cut"] = time.perf_counter() - lap
    gpu_args = {"num_gpus": 1} if report.gpu else {"num_cpus": 1}
    counts = units.select_columns(["chunks", "sentences"]).take_all()
    # Enough pieces that the actors end together.
    n_texts = sum(r["chunks"] + r["sentences"] for r in counts)
    pieces = max(-(-n_texts // PIECE), BALANCE * report.embed_actors)
    # Sorted by length over the whole collection, as Embedder.encode sorts one build's texts: a piece of one
    # document's texts, which mixes long chunks with short sentences, pads to its longest and costs 1.6
    # times as much CPU (htmldocs, in process). Then one block per piece, longest first: a block goes to
    # one actor whole, in calls of at most PIECE texts. Materialized first: with the embedding actors
    # holding every CPU, these tasks would wait for ever.
    texts = units.flat_map(_texts).materialize()
    cuts = _boundaries(texts, n_texts, pieces)
    texts = texts.sort("length", descending=True, boundaries=cuts).materialize()
    embedded = texts.map_batches(
        _Embedder, fn_constructor_args=(settings, report.gpu), batch_size=PIECE,
        compute=ray.data.ActorPoolStrategy(size=report.embed_actors), **gpu_args).materialize()
    rows = units.union(embedded)
    report.seconds["cut_and_embed"] = time.perf_counter() - lap
    report.seconds["embed"] = report.seconds["cut_and_embed"] - report.seconds["cut"]
    lap = time.perf_counter()

    per_shard: dict[int, tuple[int, int]] = {}  # shard -> (chunks, sentences)
    for row in units.select_columns(["shard", "chunks", "sentences"]).take_all():
        c, s = per_shard.get(int(row["shard"]), (0, 0))
        per_shard[int(row["shard"])] = (c + int(row["chunks"]), s + int(row["sentences"]))
    dim = _settings(settings).embedder().dim
    trained = _shared_lists(rows, per_shard, dim) if per_shard else None
    written = rows.groupby("shard").map_groups(
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
