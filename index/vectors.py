"""The FAISS index: inner product over normalized vectors, keyed by ids derived from chunk ids.

Small collections get an exact flat index; large ones an IVF index with 8-bit scalar quantization,
which keeps search near a millisecond and memory near a byte per dimension (bench/scale.py measures both).
The largest, whose exact vectors are kept beside the index, get 4-bit fast-scan product codes whose
candidates are scored again on those vectors (`search`'s `exact`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

# Below this many vectors search is exact. A flat scan reads 1.5 KB per 384-d vector: on one core here
# 0.3 ms at 10k, 1.3 ms at 25k and 2.9 ms at 50k vectors, so past 20k an exact
# scan alone would eat most of a 2 ms search budget, while IVF below that saves little and costs recall.
FLAT_MAX = 20_000
# IVF lists probed per query. On 1M clustered vectors (bench/scale.py, nlist 2048) recall@10 against
# exact search was 0.92 at 4, 0.965 at 8, 0.983 at 16, 0.988 at 32 and 64 (the ceiling set by 8-bit
# codes); 32 reaches it at ~0.55 ms p50, leaving room under 2 ms for real embeddings, which cluster less.
NPROBE = 32
# k-means for the IVF centroids runs on a seeded sample this large: centroids settle well before,
# and training on all of 1M vectors would take minutes on two cores for no gain in recall.
TRAIN_MAX = 100_000
# faiss runs 25 k-means iterations by default; 10 gave the same recall (0.988 at NPROBE, 1M vectors)
# in a third of the training time (16 s against 48 s).
KMEANS_ITERATIONS = 10
# faiss advises at least 39 training points per centroid; fewer leaves lists poorly placed.
MIN_POINTS_PER_LIST = 39
# Past this many vectors, an index whose exact vectors are kept beside it (the sentences') holds 4-bit
# fast-scan PQ codes (ivf-pqfs): 96 bytes a vector, scanned from registers instead of decoded one by one.
# Over 4M of the 1M-chunk base's vectors in 1,024 lists, 32 probed, one thread: 0.74 ms a question against
# 3.96 for 8-bit codes. Their scores are rough, so REFINE times the candidates wanted are scored again on
# the exact vectors; reading 800 of those costs ~1.7 ms, which an SQ8 scan exceeds at about 2M vectors
# in 2,048 lists. On 113k real sentence embeddings (220 eval questions) the re-scored codes found .838 of
# the exact best 20 and .885 of the best 5 at 32 lists, as 8-bit codes did (.839, .879); without
# re-scoring .722 and .672 (bench/notes.md).
PQFS_MIN = 2_000_000
REFINE = 4
IVF_KINDS = ("ivf-sq8", "ivf-pqfs")
KINDS = ("flat", *IVF_KINDS)


def faiss_id(chunk_id: str) -> int:
    """A stable 63-bit integer for a hex chunk id, so FAISS ids survive rebuilds like chunk ids do."""
    return int(chunk_id[:15], 16)


def kind_for(n: int, refinable: bool = False) -> str:
    """The index kind for `n` vectors: exact while a scan is cheap, quantized IVF above, and product codes
    at the largest sizes when `refinable` (the caller keeps the exact vectors to score candidates again)."""
    if n < FLAT_MAX:
        return "flat"
    return "ivf-pqfs" if refinable and n >= PQFS_MIN else "ivf-sq8"


def nlist_for(n: int) -> int:
    """IVF list count: about 4*sqrt(n) as a power of two, capped so each list has enough training points."""
    sample = min(n, TRAIN_MAX)
    wanted = 2 ** round(math.log2(max(4 * math.sqrt(max(n, 1)), 1)))
    cap = 2 ** int(math.log2(max(sample // MIN_POINTS_PER_LIST, 1)))
    return max(1, min(wanted, cap))


def build(ids: np.ndarray, vectors: np.ndarray, dim: int, kind: str | None = None,
          trained: faiss.Index | None = None, refinable: bool = False) -> faiss.Index:
    """An index of `kind` (chosen from the count and `refinable` when None) holding `vectors` under `ids`.
    `trained`, an IVF index of the generation before, lends its lists when they still fit (`still_fits`)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.asarray(ids, dtype=np.int64)

    def sample(count: int) -> np.ndarray:
        if count >= len(vectors):
            return vectors
        return vectors[np.sort(np.random.default_rng(0).choice(len(vectors), count, replace=False))]

    index = empty(len(ids), dim, sample, kind=kind, trained=trained, refinable=refinable)
    if len(ids):
        index.add_with_ids(vectors, ids)
    return index


def empty(n: int, dim: int, sample: Callable[[int], np.ndarray], kind: str | None = None,
          trained: faiss.Index | None = None, refinable: bool = False) -> faiss.Index:
    """An empty index of `kind` (chosen from `n`, the vectors it will hold), ready to take them: IVF
    lists come from `trained` while they still fit, or are trained on `sample(count)`, a seeded sample of
    at most TRAIN_MAX of those vectors. A base too large to hold in memory is added to slice by slice."""
    kind = kind_for(n, refinable) if kind is None else kind
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind not in IVF_KINDS:
        raise ValueError(f"vector index kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if trained is not None and still_fits(trained, n, dim, kind):
        trained.reset()  # the vectors go; the trained lists and codes' ranges or codebooks stay
        trained.nprobe = NPROBE
        return trained
    return _ivf(sample(min(n, TRAIN_MAX)), dim, nlist_for(n), kind)


def still_fits(trained: faiss.Index, n: int, dim: int, kind: str = "ivf-sq8") -> bool:
    """Whether IVF lists trained before serve `n` vectors now. Training is most of a write's cost past
    FLAT_MAX (5 s of 8 s at 85k sentence vectors), while adding to trained lists costs milliseconds.
    They are kept while the list count the size calls for (`nlist_for`) is the one they have: it
    changes at about 32k, 40k and 131k vectors, so below 131k lists never serve more than about four
    times the vectors they were trained on. Past 131k the count stays 2048 and a retrain would fit as
    many lists to a sample of the same size, so the lists are kept. Vectors of new topics land in the
    nearest lists meanwhile; `citeqa index build --force` trains anew. A change of `kind` trains anew."""
    ivf = faiss.try_extract_index_ivf(trained)
    return (ivf is not None and ivf.is_trained and trained.d == dim and kind_of(trained) == kind
            and ivf.nlist == nlist_for(n))


def _ivf(sample: np.ndarray, dim: int, nlist: int, kind: str) -> faiss.Index:
    """An empty IVF index of `kind` trained on `sample`; it stores ids itself, so no id map goes around it.
    Product codes split each vector into 2-dimension pieces of 4 bits, coded as residuals from their
    list's centroid: on real embeddings that found .722 of the best 20 before re-scoring against .688
    without residuals, and half the pieces (96) .548."""
    if len(sample) == 0:
        raise ValueError("an IVF index needs vectors to train its lists on")
    quantizer = faiss.IndexFlatIP(dim)
    if kind == "ivf-pqfs":
        index = faiss.IndexIVFPQFastScan(quantizer, dim, nlist, dim // 2, 4, faiss.METRIC_INNER_PRODUCT)
        index.by_residual = True
    else:
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = KMEANS_ITERATIONS
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    index.nprobe = NPROBE
    return index


def kind_of(index: faiss.Index) -> str:
    """What a loaded index is, in the words of `kind_for` (and of the manifest)."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexIDMap):
        index = faiss.downcast_index(index.index)
    if isinstance(index, faiss.IndexFlat):
        return "flat"
    if isinstance(index, faiss.IndexIVFScalarQuantizer) and index.sq.qtype == faiss.ScalarQuantizer.QT_8bit:
        return "ivf-sq8"
    if isinstance(index, faiss.IndexIVFPQFastScan):
        return "ivf-pqfs"
    raise ValueError(f"unknown vector index type {type(index).__name__}")


def save(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load(path: Path, mapped: bool = False) -> faiss.Index:
    """`mapped`: an IVF index's lists stay in the file, paged in as searches probe them: a base part
    opens in milliseconds, and lists no question probes never take memory. Such an index is read-only."""
    flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mapped else 0
    return faiss.read_index(str(path), flags)


def nprobe_for(index: faiss.Index, allowed_count: int | None = None) -> int:
    """Lists to probe: NPROBE, raised as `allowed` shrinks so about as many allowed vectors are seen.

    A filter keeping a fraction f of the vectors would leave NPROBE lists with f as many candidates,
    so a few allowed documents would often return nothing; probing NPROBE/f lists (all of them, for a
    small filter) keeps filtered search as complete as unfiltered search.
    """
    nlist = index.nlist
    if not allowed_count:
        return min(NPROBE, nlist)
    return min(nlist, max(NPROBE, math.ceil(NPROBE * index.ntotal / allowed_count)))


def scanned(index: faiss.Index) -> float:
    """Vectors an unfiltered search reads: all of a flat index, the probed share of an IVF one's."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None:
        return float(index.ntotal)
    return index.ntotal * nprobe_for(ivf) / ivf.nlist


def search(index: faiss.Index, query: np.ndarray, k: int, allowed: np.ndarray | None = None,
           dead: np.ndarray | None = None, exact: Callable[[np.ndarray], np.ndarray] | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Top `k` (scores, ids) for one query vector; `allowed` limits the search to those ids, and `dead`
    ids (rows a later write replaced or deleted) are never returned. `exact(ids)` gives the exact vectors
    of ids: an ivf-pqfs index's REFINE * k best are scored again on them (without it, its rough scores)."""
    if index.ntotal == 0 or k <= 0:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
    selector = None
    if allowed is not None:
        if len(allowed) == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
    elif dead is not None and len(dead):
        batch = faiss.IDSelectorBatch(np.asarray(dead, dtype=np.int64))
        selector = faiss.IDSelectorNot(batch)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        params = faiss.SearchParametersIVF(nprobe=nprobe_for(ivf, None if allowed is None else len(allowed)))
        if selector is not None:
            params.sel = selector
    else:
        params = None if selector is None else faiss.SearchParameters(sel=selector)
    query = np.asarray(query, dtype=np.float32).reshape(1, -1)
    refine = exact is not None and kind_of(index) == "ivf-pqfs"
    scores, ids = index.search(query, min(k * REFINE if refine else k, index.ntotal), params=params)
    keep = ids[0] >= 0
    scores, ids = scores[0][keep], ids[0][keep]
    if refine and len(ids):
        scores = np.asarray(exact(ids), dtype=np.float32) @ query[0]
        best = np.argsort(-scores, kind="stable")[:k]
        scores, ids = scores[best], ids[best]
    return scores, ids
