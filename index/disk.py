"""Disk space: refuse a change up front when it cannot fit, and tell a full disk from other failures.

A change writes a new generation of the FAISS and BM25 files beside the old one, and its rows go
through SQLite's WAL into the database: it needs room for a second copy of those files and about
three times its own text and vectors. Checking first means a full disk is usually met before
anything is written; when it is met half way, the change rolls back (index/building.py).
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

from citeqa.index import derived
from citeqa.index.errors import InsufficientStorage
from citeqa.index.snapshot import INDEX_DIR

MARGIN = 2_000_000  # bytes: SQLite pages, manifests, temporary files


def needed(data_dir: Path, incoming: int) -> int:
    return derived.size(Path(data_dir) / INDEX_DIR) + 3 * incoming + MARGIN


def ensure_room(data_dir: Path, incoming: int) -> None:
    """Raise InsufficientStorage when a change adding `incoming` bytes may not fit on the disk."""
    need, free = needed(data_dir, incoming), shutil.disk_usage(data_dir).free
    if free < need:
        raise InsufficientStorage(full_message(data_dir, f"this change needs about {need // 1_000_000 + 1} "
                                                         f"MB free and {free // 1_000_000} MB are"))


def full_message(data_dir: Path, detail: str) -> str:
    return (f"disk: no room to store this change in {data_dir} ({detail}); nothing was changed. "
            "Free some space or delete documents, then retry")


def filled_message(data_dir: Path) -> str:
    """For a disk that filled up during the change, despite the check (the change was rolled back)."""
    return full_message(data_dir, "it filled up during the change")


def is_full(exc: BaseException, data_dir: Path) -> bool:
    """Whether a failed write failed for want of space. SQLite often reports a full disk as a generic
    "disk I/O error" and FAISS as a RuntimeError, so the disk itself is asked as well."""
    if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return shutil.disk_usage(data_dir).free < needed(data_dir, 0)
