"""How the processes sharing one data folder (a server's workers) tell each other about changes.

SQLite holds every change; what a process needs is a cheap way to know that another one committed. A
writer rewrites a small signal file after each commit and merge; a reader compares the file's identity
(inode and modification time) with the one it saw last, a stat of a few microseconds, and reads SQLite
only when it differs. Merges take a lock file, so one process merges at a time.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SIGNAL = "changed"
LOCK = "merge.lock"


def seen(folder: Path) -> tuple[int, int]:
    try:
        stat = os.stat(folder / SIGNAL)
    except FileNotFoundError:
        return (0, 0)
    return (stat.st_ino, stat.st_mtime_ns)


def signal(folder: Path) -> tuple[int, int]:
    """Tell the other processes something changed; returns what they will see. A new file renamed over
    the old one gets a new inode, so two signals within one clock tick still differ."""
    tmp = folder / f".{SIGNAL}.{os.getpid()}"
    tmp.write_bytes(b"")
    os.replace(tmp, folder / SIGNAL)
    return seen(folder)


@contextmanager
def merging(folder: Path, wait: bool = False) -> Iterator[bool]:
    """Yields True when this process holds the lock for writing a base, False when another one holds it
    (unless `wait`: then it waits for its turn)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
