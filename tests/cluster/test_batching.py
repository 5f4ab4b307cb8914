"""Batches: questions asked at once share one call (per shard) for each round of a search."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from citeqa.cluster.batching import Batches


class Shard:
    """A send that takes its time, as a call to a remote shard does, and remembers each batch."""

    def __init__(self, seconds: float = 0.02):
        self.batches: list[list[int]] = []
        self.seconds = seconds
        self._lock = threading.Lock()

    def __call__(self, items: list[int]) -> list[int]:
        with self._lock:
            self.batches.append(list(items))
        time.sleep(self.seconds)
        if any(i < 0 for i in items):
            raise ValueError("a negative item")
        return [i * i for i in items]


def test_a_lone_item_goes_at_once_and_gets_its_own_result():
    shard = Shard(seconds=0)
    batches = Batches(shard)
    try:
        assert batches(7) == 49
        assert shard.batches == [[7]]
    finally:
        batches.close()


def test_items_asked_at_once_share_calls_and_each_gets_its_own_result():
    shard = Shard()
    batches = Batches(shard)
    try:
        with ThreadPoolExecutor(16) as pool:
            got = list(pool.map(batches, range(64)))
    finally:
        batches.close()
    assert got == [i * i for i in range(64)]
    assert sorted(i for b in shard.batches for i in b) == list(range(64))  # each sent once
    assert len(shard.batches) <= 64 / 4  # 16 waiting while each call is out: far fewer calls than items


def test_a_failed_call_fails_the_items_it_carried_and_no_other():
    shard = Shard()
    batches = Batches(shard)
    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(batches, i) for i in [*range(1, 8), -1, *range(8, 16)]]
        failed = {f.exception() is not None for f in futures}
        assert failed == {True, False}
        bad = next(b for b in shard.batches if -1 in b)
        for item, f in zip([*range(1, 8), -1, *range(8, 16)], futures, strict=True):
            if item in bad:
                with pytest.raises(ValueError, match="negative"):
                    f.result()
            else:
                assert f.result() == item * item
    finally:
        batches.close()


def test_closing_answers_what_was_queued_and_later_items_still_get_answers():
    shard = Shard()
    batches = Batches(shard)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(batches, i) for i in range(8)]
        time.sleep(0.005)
        batches.close()
    assert [f.result(timeout=10) for f in futures] == [i * i for i in range(8)]
    assert batches(9) == 81  # after closing: sent alone
    for lane in batches._lanes:
        lane.join(timeout=10)
        assert not lane.is_alive()
