"""The collection's statistics of words, kept by the gateway between writes, so that a question whose
words were seen skips one of its three rounds of calls to the shards.

What is kept is exact for the shard versions it was read at (every write adds one to its shard's
version). Each shard says its version with its candidates; when one differs, what is kept is dropped
and the question asks again, so an answer weighs words by the collection as its candidates found it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from citeqa.index.snapshot import Totals

MOST_TERMS = 500_000  # then started afresh: a bound on the gateway's memory (tens of MB at most)

Versions = tuple[int, ...]  # each shard's, in shard order


@dataclass
class _Held:
    versions: Versions
    counts: tuple[int, int, int]  # live chunks, BM25 tokens, live sentences
    chunk_df: dict[str, int] = field(default_factory=dict)
    sentence_df: dict[str, int] = field(default_factory=dict)
    mentions: dict[str, bool] = field(default_factory=dict)


class TermStats:
    def __init__(self):
        self._lock = threading.Lock()
        self._held: _Held | None = None

    def get(self, terms: list[str], prefixes: list[str]) -> tuple[Totals, dict[str, bool], Versions] | None:
        """The statistics of `terms` and the answers for `prefixes`, when every one of them is kept."""
        with self._lock:
            h = self._held
            if h is None or any(t not in h.chunk_df for t in terms) or any(p not in h.mentions
                                                                          for p in prefixes):
                return None
            totals = Totals(*h.counts, {t: h.chunk_df[t] for t in terms},
                            {t: h.sentence_df[t] for t in terms})
            return totals, {p: h.mentions[p] for p in prefixes}, h.versions

    def keep(self, versions: Versions, totals: Totals, mentioned: dict[str, bool]) -> None:
        """What the shards said at `versions`; what was kept at other versions goes."""
        with self._lock:
            h = self._held
            if h is None or h.versions != versions or len(h.chunk_df) > MOST_TERMS:
                h = self._held = _Held(versions, (totals.live_chunks, totals.total_length,
                                                  totals.live_sentences))
            h.chunk_df.update(totals.chunk_df)
            h.sentence_df.update(totals.sentence_df)
            h.mentions.update(mentioned)

    def drop(self, versions: Versions) -> None:
        """Forget what was kept at `versions` (a shard said another)."""
        with self._lock:
            if self._held is not None and self._held.versions == versions:
                self._held = None
