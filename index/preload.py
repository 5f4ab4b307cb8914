"""Reading what a loaded base's searches read, once, into the page cache: on a thread of its own, which
the engine waits for before it says it is ready when CITEQA_PRELOAD is before-ready.

A base part is memory-mapped, so a search reads from disk whatever no search has touched yet. Each
question looks up keys and postings at scattered places of the base's arrays and scans whole IVF lists,
megabytes of them at a million chunks; read cold, they made the first pass over the questions after a
start several times slower than the rest (bench/notes.md). Reading those files through once with plain
reads fills the page cache at the disk's sequential speed and costs no process memory (`parts.searched_files`
says which). At most half the memory the system has available is read, taking files in the order given,
so preloading never pushes out more than it brings in. The payload arrays (text, sentence vectors) are
left to be read as answers quote them: in a warm page cache the kernel maps the pages around each random
read into the process, which raised a 1M server's RSS by a third when every array was preloaded. (A base
whose sentence index holds product codes scores candidates on its sentence vectors at every question,
with plain reads that map nothing, so those are read in too.)"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

BLOCK = 4 << 20  # bytes per read: large enough that the reads cost little CPU next to the copy


def available_memory() -> int:
    """MemAvailable of /proc/meminfo in bytes; 0 where it cannot be read (nothing is then preloaded)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def plan(paths: Iterable[Path], budget: int) -> list[Path]:
    """The files to read, in the order given, while their sizes add up to at most `budget` bytes."""
    chosen, total = [], 0
    for path in paths:
        try:
            size = path.stat().st_size
        except OSError:
            continue
        if total + size > budget:
            break
        chosen.append(path)
        total += size
    return chosen


def read_through(paths: Iterable[Path]) -> int:
    """Read each file to its end, keeping nothing; the bytes read. The GIL is let go in each read."""
    done = 0
    buffer = bytearray(BLOCK)
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue  # a generation pruned meanwhile: nothing to preload
        try:
            while n := os.readv(fd, [buffer]):
                done += n
        finally:
            os.close(fd)
    return done


def start(paths: list[Path]) -> threading.Thread | None:
    """Preload `paths` (most needed first) on a daemon thread; None when none fits in memory."""
    chosen = plan(paths, available_memory() // 2)
    if not chosen:
        return None
    thread = threading.Thread(target=_run, args=(chosen,), name="preload", daemon=True)
    thread.start()
    return thread


def _run(paths: list[Path]) -> None:
    began = time.perf_counter()
    done = read_through(paths)
    log.info("read %d files of the index into the page cache, %.0f MB in %.1f s", len(paths), done / 2**20,
             time.perf_counter() - began)
