"""Scale benchmark: the vector index at 10k-1M synthetic 384-d vectors, and BM25 at many passages.

Everything goes through `index.vectors` and `index.lexical` exactly as the service calls them, one
query per call. The vectors are generated, not embedded, so a million of them cost seconds, not hours.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

from citeqa.index import hybrid, parts, vectors
from citeqa.index.manifest import Manifest
from citeqa.index.records import Rows
from citeqa.index.snapshot import Segment, Snapshot

ROOT = Path(__file__).resolve().parents[1]
DIM = 384
K = 10
NPROBE_SWEEP = (4, 8, 16, 32, 64)
FILTER_SIZE = 200  # ids allowed in the filtered-search check: a few documents' chunks
BLOCK = 100_000  # rows generated at a time, to bound the float64 temporaries


def status_mb(field: str, pid: int | str = "self") -> float:
    """A memory figure of a process from the kernel, in MB: VmRSS (resident, what `top` shows) or
    VmHWM (its high-water mark)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def rss_mb() -> float:
    return status_mb("VmRSS")


def peak_rss_mb() -> float:
    return status_mb("VmHWM")


def reset_peak_rss() -> None:
    """Start the peak (VmHWM) again from the current RSS, so a peak belongs to one step."""
    Path("/proc/self/clear_refs").write_text("5")


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _mixing(rng: np.random.Generator, dim: int, decay: float) -> np.ndarray:
    """A random rotation with a power-law spectrum: noise spread over few directions, like embeddings'."""
    rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    scale = np.arange(1, dim + 1) ** -decay
    scale /= np.sqrt((scale**2).sum())
    return (scale[:, None] * rotation.T).astype(np.float32)


def synthetic(n: int, stream: int, seed: int = 0, dim: int = DIM, centres: int = 2_000, topics: int = 50,
              spread: float = 0.8) -> np.ndarray:
    """`n` unit vectors from a clustered Gaussian mixture; other `stream`s draw other points of it.

    Real sentence embeddings are clustered (topics, then subtopics) with most variance in a few
    directions; uniform points on a sphere are not, and would make every approximate index look worse
    than it is on text (no neighbour is much nearer than any other). So: `topics` directions,
    `centres` subtopic centres around them (overlapping: a centre's nearest neighbour is at cosine
    ~0.8), popularity falling as 1/sqrt(rank), and points scattered around their centre with
    power-law noise (nearest neighbours at cosine ~0.7-0.8, random pairs ~0, as with MiniLM).
    The seed fixes the mixture, so base vectors (stream 0) and queries (stream 1) share it.
    """
    rng = np.random.default_rng([seed, 0])
    mixing = _mixing(rng, dim, 0.5)
    heads = _unit(rng.standard_normal((topics, dim), dtype=np.float32))
    noise = rng.standard_normal((centres, dim), dtype=np.float32) @ mixing
    means = _unit(heads[rng.integers(topics, size=centres)] + 0.7 * noise)
    weights = np.arange(1, centres + 1) ** -0.5
    weights /= weights.sum()
    rng = np.random.default_rng([seed, 1, stream])
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, BLOCK):
        end = min(n, start + BLOCK)
        labels = rng.choice(centres, end - start, p=weights)
        points = means[labels] + spread * (rng.standard_normal((end - start, dim), dtype=np.float32) @ mixing)
        out[start:end] = _unit(points)
    return out


def exact_top(base: np.ndarray, queries: np.ndarray, k: int = K) -> np.ndarray:
    """Row numbers of the true top `k` by inner product: an exact flat index, searched in one batch."""
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    return index.search(queries, k)[1]


def recall(found: list[np.ndarray] | np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's true top ids that were found."""
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth,
                                                                                          strict=True)]))


def rounded(value):
    """Floats to four decimals, through dicts and lists: the figures go into a report as they are."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def _ms(seconds: list[float]) -> dict[str, float]:
    p50, p99 = np.percentile(seconds, [50, 99])
    return {"p50_ms": 1e3 * float(p50), "p99_ms": 1e3 * float(p99)}


def timed_search(index: faiss.Index, queries: np.ndarray, allowed: np.ndarray | None = None
                 ) -> tuple[list[np.ndarray], dict[str, float]]:
    """Each query alone through `vectors.search`, as the service sends them; the ids and p50/p99."""
    found, seconds = [], []
    for query in queries:
        start = time.perf_counter()
        _, ids = vectors.search(index, query, K, allowed)
        seconds.append(time.perf_counter() - start)
        found.append(ids)
    return found, _ms(seconds)


def measure_load(path: str | Path) -> dict:
    """`vectors.load` timed, and the RSS it adds; meant to run in a fresh process (see `load_fresh`)."""
    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    index = vectors.load(Path(path))
    seconds = time.perf_counter() - start
    return {"load_s": seconds, "rss_mb": rss_mb() - before, "kind": vectors.kind_of(index),
            "ntotal": int(index.ntotal)}


def load_fresh(path: Path) -> dict:
    """`measure_load` in a new interpreter: this one's freed heap would hide part of the growth."""
    code = ("import json, sys\nfrom bench.scale import measure_load\n"
            "print(json.dumps(measure_load(sys.argv[1])))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def nprobe_sweep(index: faiss.Index, queries: np.ndarray, truth: np.ndarray, timed: int = 200) -> list[dict]:
    """Recall@10 (all queries, one batch) and single-query p50/p99 (first `timed`) for each nprobe."""
    ivf = faiss.extract_index_ivf(index)
    rows = []
    for nprobe in NPROBE_SWEEP:
        if nprobe > ivf.nlist:
            break
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        found = index.search(queries, K, params=params)[1]
        seconds = []
        for query in queries[:timed]:
            start = time.perf_counter()
            index.search(query.reshape(1, -1), K, params=params)
            seconds.append(time.perf_counter() - start)
        rows.append({"nprobe": nprobe, "recall_at_10": recall(found, truth), **_ms(seconds)})
    return rows


@contextmanager
def faiss_threads(threads: int | None) -> Iterator[int]:
    """FAISS's OpenMP threads set to `threads` (None: left as they are) inside the block; yields the count."""
    before = faiss.omp_get_max_threads()
    if threads is not None:
        faiss.omp_set_num_threads(threads)
    try:
        yield faiss.omp_get_max_threads()
    finally:
        faiss.omp_set_num_threads(before)


def run_size(base: np.ndarray, queries: np.ndarray, workdir: Path, seed: int = 0, threads: int | None = None
             ) -> dict:
    """One size: build, save, load (fresh process), search alone and filtered, recall against exact.

    `threads` applies to the timed searches only; building and the exact truth use FAISS's default.
    """
    n = len(base)
    rng = np.random.default_rng([seed, 2, n])
    ids = rng.choice(2**62, n, replace=False).astype(np.int64)  # like `vectors.faiss_id`: big, scattered
    start = time.perf_counter()
    index = vectors.build(ids, base, DIM)
    build_s = time.perf_counter() - start
    path = workdir / f"vectors-{n}.faiss"
    vectors.save(index, path)
    del index
    gc.collect()
    loaded = load_fresh(path)
    index = vectors.load(path)
    truth = ids[exact_top(base, queries)]
    allowed = rng.choice(ids, min(FILTER_SIZE, n), replace=False)
    allowed_rows = np.flatnonzero(np.isin(ids, allowed))
    filtered_truth = ids[allowed_rows][exact_top(base[allowed_rows], queries[:200])]
    ivf = faiss.try_extract_index_ivf(index)
    with faiss_threads(threads) as used:
        found, latency = timed_search(index, queries)
        filtered, filtered_latency = timed_search(index, queries[:200], allowed)
        sweep = None if ivf is None else nprobe_sweep(index, queries, truth)
    result = {
        "n": n, "kind": vectors.kind_of(index), "nlist": None if ivf is None else int(ivf.nlist),
        "nprobe": None if ivf is None else vectors.nprobe_for(ivf), "build_s": build_s,
        "file_mb": path.stat().st_size / 2**20, "load_s": loaded["load_s"], "rss_mb": loaded["rss_mb"],
        **latency, "recall_at_10": recall(found, truth),
        "filtered_p50_ms": filtered_latency["p50_ms"],
        "filtered_recall_at_10": recall(filtered, filtered_truth), "search_threads": used,
    }
    if sweep is not None:
        result["nprobe_sweep"] = sweep
    path.unlink()
    return result


def run(sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000), queries: int = 1000, seed: int = 0,
        workdir: Path | None = None, threads: int | None = None) -> list[dict]:
    """One result per size (see `run_size`); the sizes are prefixes of one generated set.

    Searches run on `threads` FAISS threads (the library default when None; `citeqa serve` uses one);
    the count is recorded, as is the load average, because on a busy two-core machine OpenMP threads
    waiting for each other dominate single-query latency.
    """
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        base = synthetic(max(sizes), stream=0, seed=seed)
        asked = synthetic(queries, stream=1, seed=seed)
        results = []
        for n in sorted(sizes):
            result = run_size(base[:n], asked, Path(tmp), seed, threads)
            results.append(rounded({**result, "queries": queries, "load_average": os.getloadavg()[0]}))
        return results


def synthetic_texts(passages: int, seed: int = 0, words: int = 60, vocabulary: int = 50_000
                    ) -> tuple[list[str], list[str]]:
    """`passages` texts of about `words` words from a Zipf vocabulary, and its word list.

    Word frequencies follow Zipf's law (rank^-1), the head being real English stop words as in
    text, the rest invented words of 2-10 letters, so stop-word removal and stemming do real work.
    """
    rng = np.random.default_rng([seed, 3])
    vocab = list(dict.fromkeys(["the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "was",
                                "with", "be", "by", "on", "not", "he", "this", "are", "or", "his", "from"]))
    seen = set(vocab)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    while len(vocab) < vocabulary:
        word = "".join(rng.choice(letters, rng.integers(2, 11)))
        if word not in seen:
            seen.add(word)
            vocab.append(word)
    weights = 1.0 / np.arange(1, vocabulary + 1)
    weights /= weights.sum()
    lengths = rng.integers(words * 2 // 3, words * 4 // 3 + 1, passages)
    tokens = rng.choice(vocabulary, int(lengths.sum()), p=weights)
    table = np.array(vocab, dtype=object)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [" ".join(table[tokens[a:b]]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)], vocab


def bm25_cost(passages: int, depth: int, seed: int = 0, queries: int = 300) -> dict:
    """Build, size, load and query cost of the BM25 index at `passages` synthetic passages.

    Queries of 2-6 words are drawn from the same vocabulary and ranked by `hybrid.lexical_ranking`
    at the retriever's `depth`, the same work the hybrid search does for every question.
    """
    texts, vocab = synthetic_texts(passages, seed)
    rng = np.random.default_rng([seed, 4])
    weights = 1.0 / np.arange(1, len(vocab) + 1)
    asked = [" ".join(vocab[i] for i in rng.choice(len(vocab), rng.integers(2, 7), p=weights / weights.sum()))
             for _ in range(queries)]
    gc.collect()
    before = rss_mb()
    reset_peak_rss()
    start = time.perf_counter()
    part = _passages_part(texts)
    build_s = time.perf_counter() - start
    gc.collect()
    result = {"passages": passages, "build_s": build_s, "rss_mb": rss_mb() - before,
              "build_peak_mb": peak_rss_mb() - before}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "part"
        parts.save(part, folder)
        result["disk_mb"] = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20
        del part
        gc.collect()
        start = time.perf_counter()
        part = parts.load(folder)  # memory-mapped, as a server loads its base
        result["load_s"] = time.perf_counter() - start
        stub = Manifest(model="none", dim=1, base_version=0, generation="bench", documents=passages,
                        chunks=passages, sentences=0)
        snap = Snapshot(stub, 0, [Segment.of(part)], {})
        seconds = []
        for query in asked:
            start = time.perf_counter()
            hybrid.lexical_ranking(snap, query, depth, None)
            seconds.append(time.perf_counter() - start)
        del snap, part
    return rounded({**result, **_ms(seconds), "queries": queries, "load_average": os.getloadavg()[0]})


def _passages_part(texts: list[str]) -> parts.Part:
    """A part of one chunk per passage (each its own document) and no sentences: BM25 alone counts."""
    n = len(texts)
    ids = [f"{i:016x}" for i in range(n)]
    chunks = Rows(ids, ids, np.zeros(n, np.int64), np.array([len(t) for t in texts], np.int64), [""] * n,
                  np.zeros((n, 1), np.float32))
    none = Rows([], [], np.zeros(0, np.int64), np.zeros(0, np.int64), [], np.zeros((0, 1), np.float32), [])
    return parts.build(dict(zip(ids, texts, strict=True)), chunks, none)
