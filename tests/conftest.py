"""Session fixtures: the real model, and the seeds indexed once (tests that write copy the folder)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import SEEDS, chunk_params, new_embedder, new_engine
from tests.support.servers import Server


@pytest.fixture(scope="session")
def embedder():
    return new_embedder().load()


@pytest.fixture(scope="session")
def seeds_data(tmp_path_factory, embedder) -> Path:
    """A data folder holding the seeds, built with the default settings. Read-only: copy it to write."""
    from citeqa.index.building import sync_folder

    data = tmp_path_factory.mktemp("seeds-data")
    sync_folder(data, SEEDS, embedder, chunk_params(), progress=False)
    return data


@pytest.fixture(scope="session")
def engine(seeds_data, embedder):
    return new_engine(seeds_data, embedder).load()


@pytest.fixture(scope="session")
def server(seeds_data):
    """Read-only use: the seeds index as built, shared by every test that does not write."""
    srv = Server("", seeds_data, {}).start()
    yield srv.url
    srv.stop()


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
