"""Helpers shared by the tests: the seeds, and index parts built from the same settings the service uses
(every default lives in citeqa.service.config.Settings, so the tests restate none)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from citeqa.index.building import ChunkParams
from citeqa.index.embedding import Embedder
from citeqa.index.engine import Engine
from citeqa.service.config import Settings

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"
# One export of the query model for the whole run, shared by every embedder and server the tests make
# (set before anything reads the settings; the servers inherit it through the environment).
MODEL_CACHE = Path(os.environ.setdefault("CITEQA_MODEL_CACHE", str(ROOT / "var" / "test-models")))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
SETTINGS = Settings()


def chunk_params() -> ChunkParams:
    return SETTINGS.chunk_params()


def new_embedder(**given) -> Embedder:
    """An embedder as the service makes one (not loaded); `given` overrides its arguments."""
    args = {"model": SETTINGS.embed_model, "batch_size": SETTINGS.batch_size,
            "query_backend": SETTINGS.query_backend, "cache_dir": MODEL_CACHE} | given
    return Embedder(**args)


def new_engine(data: Path, embedder: Embedder, **given) -> Engine:
    """An engine over `data` with the service's settings (not loaded)."""
    return Engine(data, embedder, chunk_params(), SETTINGS.search_depth,
                  **{"merge_rows": SETTINGS.merge_rows, **given})


def fill(disk: Path, leave: int) -> None:
    """Take all but `leave` bytes of the disk with a ballast file, as other programs would."""
    free = shutil.disk_usage(disk).free
    with (disk / "ballast").open("wb") as f:
        f.truncate(0)
        f.write(b"\0" * max(0, free - leave))
