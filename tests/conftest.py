"""Shared fixtures: the real model, and the seeds indexed once per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="session")
def embedder():
    from index.embedding import Embedder

    return Embedder().load()


@pytest.fixture(scope="session")
def seeds_data(tmp_path_factory, embedder) -> Path:
    """A data folder holding the seeds, built with the default settings."""
    from index.building import ChunkParams, sync_folder

    data = tmp_path_factory.mktemp("seeds-data")
    sync_folder(data, SEEDS, embedder, ChunkParams(), progress=False)
    return data


@pytest.fixture(scope="session")
def engine(seeds_data, embedder):
    from index.engine import Engine

    return Engine(seeds_data, embedder).load()


def pytest_addoption(parser):
    parser.addoption("--screenshots", metavar="DIR", default=None,
                     help="Save the chat page's screenshots here (make screenshots: docs/).")


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB tmpfs: a disk that can really fill up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"mounting a tmpfs needs root: {done.stderr}"
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path, leave: int) -> None:
    """Take all but `leave` bytes of the disk with a ballast file, as other programs would."""
    free = shutil.disk_usage(disk).free
    with (disk / "ballast").open("wb") as f:
        f.truncate(0)
        f.write(b"\0" * max(0, free - leave))
