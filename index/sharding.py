"""Which shard holds a document, for a collection split over several citeqa indexes (the cluster mode).

A document lives whole on one shard, so its units, text and offsets stay together: its bucket is
crc32(doc_id) mod BUCKETS, and a map in the collection's `shards.json` gives each bucket's shard. Shards
own runs of consecutive buckets, so a shard that grows too large is split by handing half of its run to a
new shard: only that shard's documents move, and no document of any other shard does.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from citeqa.index.manifest import write_atomic

BUCKETS = 4096
FILE = "shards.json"


def bucket_of(doc_id: str) -> int:
    """The document's bucket: the same on every machine and Python (crc32, unlike `hash`, is not salted)."""
    return zlib.crc32(doc_id.encode()) % BUCKETS


@dataclass(frozen=True)
class ShardMap:
    shards: tuple[str, ...]  # shard names, which are also their folders' names
    owner: tuple[int, ...]  # owner[bucket] is the index in `shards` of the shard that holds the bucket

    def __post_init__(self) -> None:
        if not self.shards or len(set(self.shards)) != len(self.shards):
            raise ValueError("shards: a shard map needs at least one shard, each named once")
        if len(self.owner) != BUCKETS or not all(0 <= s < len(self.shards) for s in self.owner):
            raise ValueError(f"owner: needs {BUCKETS} entries, each the number of a listed shard")
        if set(self.owner) != set(range(len(self.shards))):
            raise ValueError("owner: every shard must own at least one bucket")

    def shard_of(self, doc_id: str) -> str:
        return self.shards[self.owner[bucket_of(doc_id)]]

    def partition(self, doc_ids: Iterable[str]) -> dict[str, list[str]]:
        """The documents by the shard that holds them, in their given order; every shard has an entry."""
        out: dict[str, list[str]] = {name: [] for name in self.shards}
        for doc_id in doc_ids:
            out[self.shard_of(doc_id)].append(doc_id)
        return out

    def split(self, shard: str, new: str) -> ShardMap:
        """A map in which `new` takes the upper half of `shard`'s buckets."""
        if new in self.shards:
            raise ValueError(f"shard {new!r} exists already")
        if shard not in self.shards:
            raise ValueError(f"no shard {shard!r}; the shards are {', '.join(self.shards)}")
        number = self.shards.index(shard)
        owned = [b for b, s in enumerate(self.owner) if s == number]
        if len(owned) < 2:
            raise ValueError(f"shard {shard!r} owns one bucket and cannot be split")
        moved = set(owned[len(owned) // 2:])
        owner = tuple(len(self.shards) if b in moved else s for b, s in enumerate(self.owner))
        return ShardMap((*self.shards, new), owner)


def even(count: int) -> ShardMap:
    """`count` shards named shard-000, shard-001, ..., each owning one run of about BUCKETS/count buckets."""
    if not 1 <= count <= BUCKETS:
        raise ValueError(f"shards: must be between 1 and {BUCKETS}, got {count}")
    return ShardMap(tuple(f"shard-{i:03d}" for i in range(count)),
                    tuple(b * count // BUCKETS for b in range(BUCKETS)))


def save(shard_map: ShardMap, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"buckets": BUCKETS, "shards": list(shard_map.shards), "owner": list(shard_map.owner)}
    write_atomic(folder / FILE, json.dumps(data).encode())


def load(folder: Path) -> ShardMap:
    """The map of a sharded collection; ValueError naming the field when the file is not one."""
    path = folder / FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path} is missing: not a sharded collection (make one with `citeqa cluster "
                         "ingest`)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("buckets") != BUCKETS:
        raise ValueError(f"{path}: buckets must be {BUCKETS}")
    shards, owner = data.get("shards"), data.get("owner")
    if not isinstance(shards, list) or not all(isinstance(s, str) for s in shards):
        raise ValueError(f"{path}: shards must be a list of names")
    if not isinstance(owner, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in owner):
        raise ValueError(f"{path}: owner must be a list of shard numbers")
    try:
        return ShardMap(tuple(shards), tuple(owner))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
