"""Shared fixtures: the real model, and the seeds indexed once per test session."""

from __future__ import annotations

import os
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
