"""`citeqa cluster ingest`: a folder of documents into a sharded collection, one citeqa index per shard.

The steps are those of `citeqa index build`, so ids and vectors are equal: read and parse each file,
take out the blocks repeated across the collection (a statistic of all of it), cut sentences and chunks,
embed them, and write each shard's documents (crc32(doc_id) mod 4096 -> shards.json) as its own index.
`build_in_process` runs them in this process; `build_on_ray` runs them as Ray Data stages (cluster/data.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from citeqa.index import building, sharding
from citeqa.index.building import ChunkParams
from citeqa.index.embedding import Embedder
from citeqa.index.errors import InvalidInput
from citeqa.index.loading import Skipped, read_folder
from citeqa.index.store import Prepared


def check_out(out: Path, shards: int) -> None:
    """A sharded collection is written into a folder of its own: refused before any work when it holds one."""
    if not 1 <= shards <= sharding.BUCKETS:
        raise InvalidInput(f"--shards must be between 1 and {sharding.BUCKETS}, got {shards}")
    if out.exists() and any(out.iterdir()):
        raise InvalidInput(f"--out {out} is not empty; give a new folder (or remove this one)")


def write_shards(out: Path, shard_map: sharding.ShardMap, prepared: list[Prepared], own: dict[str, str],
                 embedder: Embedder, params: ChunkParams) -> None:
    groups = shard_map.partition(p.doc.doc_id for p in prepared)
    by_id = {p.doc.doc_id: p for p in prepared}
    for name, ids in groups.items():
        mine = {d: own[d] for d in ids if d in own}
        write_shard(out / name, [by_id[d] for d in ids], mine, embedder, params)
    sharding.save(shard_map, out)


def write_shard(folder: Path, prepared: list[Prepared], own: dict[str, str], embedder: Embedder,
                params: ChunkParams, trained: dict | None = None) -> None:
    """One shard's index; a half-written folder is removed, so a retried task starts clean."""
    if folder.exists():
        shutil.rmtree(folder)
    try:
        building.write_prepared(folder, prepared, embedder, params, own, trained)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def build_in_process(docs_dir: Path, out: Path, shards: int, embedder: Embedder, params: ChunkParams
                     ) -> list[Skipped]:
    """Every step in this process, one after the other: the reference the Ray pipeline must equal."""
    check_out(out, shards)
    docs, skipped = [], []
    for item in read_folder(docs_dir):
        (skipped if isinstance(item, Skipped) else docs).append(item)
    docs, own = building.cleaned(docs, params.recipe(embedder.name) + embedder.recipe_tag)
    skipped += [Skipped(Path(d.source), "no article text found in it") for d in docs if not d.content]
    prepared = building.prepare([d for d in docs if d.content], embedder, params)
    write_shards(out, sharding.even(shards), prepared, own, embedder, params)
    return skipped
