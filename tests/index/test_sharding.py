"""A document's shard: stable everywhere, spread evenly, and moved only when its own shard is split."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from citeqa.index import sharding

IDS = [f"doc-{i}" for i in range(20_000)]


def test_a_bucket_is_the_same_in_another_python_process():
    """Python's own hash of a string changes from process to process; a shard must not."""
    code = "from citeqa.index import sharding; print([sharding.bucket_of(f'doc-{i}') for i in range(50)])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "12345"}).stdout
    assert json.loads(other) == [sharding.bucket_of(f"doc-{i}") for i in range(50)]
    # CRC-32's published check value (of "123456789") is 0xCBF43926: any language's crc32 finds the bucket.
    assert sharding.bucket_of("123456789") == 0xCBF43926 % sharding.BUCKETS == 0x926


@pytest.mark.parametrize("count", [1, 3, 4, 16])
def test_even_shards_hold_about_as_many_documents_each(count):
    held = Counter(sharding.even(count).shard_of(d) for d in IDS)
    assert len(held) == count
    assert max(held.values()) <= 1.1 * len(IDS) / count and min(held.values()) >= 0.9 * len(IDS) / count


def test_splitting_a_shard_moves_half_of_its_documents_and_no_others():
    before = sharding.even(4)
    after = before.split("shard-002", "shard-004")
    moved = [d for d in IDS if before.shard_of(d) != after.shard_of(d)]
    assert {before.shard_of(d) for d in moved} == {"shard-002"}
    assert {after.shard_of(d) for d in moved} == {"shard-004"}
    assert 0.4 <= len(moved) / sum(before.shard_of(d) == "shard-002" for d in IDS) <= 0.6
    with pytest.raises(ValueError, match="exists already"):
        after.split("shard-000", "shard-004")


def test_partition_keeps_each_document_whole_on_one_shard():
    parts = sharding.even(3).partition(IDS)
    assert sorted(d for docs in parts.values() for d in docs) == sorted(IDS)
    assert set(parts) == {"shard-000", "shard-001", "shard-002"}


def test_a_saved_map_loads_equal_and_a_damaged_one_names_the_field(tmp_path):
    shard_map = sharding.even(4).split("shard-001", "shard-004")
    sharding.save(shard_map, tmp_path)
    assert sharding.load(tmp_path) == shard_map
    data = json.loads((tmp_path / sharding.FILE).read_text())
    data["owner"][7] = 9
    (tmp_path / sharding.FILE).write_text(json.dumps(data))
    with pytest.raises(ValueError, match="owner"):
        sharding.load(tmp_path)
    with pytest.raises(ValueError, match="not a sharded collection"):
        sharding.load(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="between 1 and 4096"):
        sharding.even(0)
