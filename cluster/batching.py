"""Questions asked at once share their calls to the shards: one call per shard per batch, not per question.

A call to a shard actor costs about 1.5 ms of CPU whatever it carries (the driver's half, the actor's and
the raylets'), and an answer makes three rounds of them. Each round (`Batches`) has a queue and `lanes`
threads: a lane takes every item waiting, makes one call for all of them, and hands each its share. A
lone question goes straight through; under load, questions that arrive while a call is in flight go
together in the next one, so the calls' cost is shared without a wait added to anyone.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

LANES = 1  # batches of one round in flight: the next one gathers what arrives meanwhile
MOST = 64  # items in one batch


class Batches:
    """`self(item)` returns `send([... item ...])`'s result for it: `send` takes a list of items and
    returns one result per item, in order (or raises, for all of them)."""

    def __init__(self, send: Callable[[list[Any]], Sequence[Any]], lanes: int = LANES, most: int = MOST):
        self._send, self._most = send, most
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closing, self._closed = threading.Lock(), False
        self._lanes = [threading.Thread(target=self._lane, daemon=True, name=f"batches-{i}")
                       for i in range(lanes)]
        for lane in self._lanes:
            lane.start()

    def __call__(self, item: Any) -> Any:
        with self._closing:
            if not self._closed:
                done: Future = Future()
                self._queue.put((item, done))
        if self._closed:  # late: sent alone, never left waiting for a lane that stopped
            return self._send([item])[0]
        return done.result()

    def close(self) -> None:
        """Stop the lanes once the items already queued are answered (each is queued before the stops)."""
        with self._closing:
            self._closed = True
            for _ in self._lanes:
                self._queue.put(None)

    def _lane(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._most:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:  # closing: this lane answers what it took, then stops
                    self._answer(batch)
                    return
                batch.append(more)
            self._answer(batch)

    def _answer(self, batch: list[tuple[Any, Future]]) -> None:
        try:
            results = self._send([item for item, _ in batch])
        except BaseException as exc:  # every question of the batch learns it, as one would alone
            for _, done in batch:
                done.set_exception(exc)
            return
        for (_, done), result in zip(batch, results, strict=True):
            done.set_result(result)
