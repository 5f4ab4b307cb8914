"""Faults on a real server: SIGKILL during a document add and during a rebuild, damaged or missing FAISS
files, a full disk. After each, the server starts, agrees with SQLite, and every acknowledged write is
there. (tests/index/test_crash_safety.py kills the index code itself at every phase; these kill the
service as an operator would meet it.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from citeqa.index import derived, manifest
from citeqa.index.snapshot import DB_NAME, INDEX_DIR
from tests.support import ROOT, SEEDS, fill
from tests.support.servers import Server, serve_copy

CLI = str(Path(sys.executable).with_name("citeqa"))


def report(n: int, paragraphs: int = 1) -> tuple[str, str]:
    """A document found by one word of its own (`faultdoc<n>`): long ones take a while to embed."""
    body = "\n\n".join(f"In year {1800 + p} the faultdoc{n} mill ground {p * 7 + n} sacks of rye for the "
                       f"valley. Its wheel turned {p + 3} times a minute in spring floods."
                       for p in range(paragraphs))
    return f"faultdoc{n}", f"Faultdoc{n} mill records\n\n{body}\n"


def post(url: str, doc_id: str, text: str, timeout: float = 120) -> httpx.Response:
    return httpx.post(f"{url}/v1/documents", json={"doc_id": doc_id, "text": text}, timeout=timeout)


def check_holds(url: str, acknowledged: dict[str, str], maybe: dict[str, str] | None = None) -> None:
    """Every acknowledged document is stored whole and found by search; one whose write was cut short
    is there whole and findable, or not there at all."""
    listed = {d["doc_id"] for d in httpx.get(f"{url}/v1/documents").json()["documents"]}
    for doc_id, text in {**acknowledged, **(maybe or {})}.items():
        got = httpx.get(f"{url}/v1/documents/{doc_id}")
        if doc_id not in acknowledged and got.status_code == 404:
            assert doc_id not in listed
            continue
        assert got.status_code == 200 and got.json()["text"] == text, doc_id
        hits = httpx.get(f"{url}/v1/search", params={"q": doc_id, "k": 1}).json()["results"]
        assert hits[0]["doc_id"] == doc_id, f"{doc_id} is stored but the index does not find it"


def warnings(server: Server) -> list[str]:
    return [line["message"] for line in map(json.loads, server.log_text().splitlines())
            if line["level"] == "WARNING"]


@pytest.mark.slow
def test_a_server_killed_during_document_adds_restarts_with_every_acknowledged_one(seeds_data, tmp_path,
                                                                                  capsys):
    server = serve_copy(seeds_data, tmp_path)
    acknowledged, maybe, cut = {}, {}, 0
    try:
        for n, delay in enumerate((0.05, 0.4, 1.0)):
            doc_id, text = report(n, paragraphs=60)  # about 2 s of embedding on two cores
            outcome = {}
            writer = threading.Thread(target=lambda d=doc_id, t=text, o=outcome: o.update(
                response=_try(lambda: post(server.url, d, t))))
            writer.start()
            time.sleep(delay)
            server.kill()
            writer.join()
            if outcome["response"] is not None and outcome["response"].status_code == 201:
                acknowledged[doc_id] = text
            else:
                maybe[doc_id], cut = text, cut + 1
            server.start()
            check_holds(server.url, acknowledged, maybe)
            # The server goes on taking writes after the crash.
            doc_id, text = report(100 + n)
            assert post(server.url, doc_id, text).status_code == 201
            acknowledged[doc_id] = text
        with capsys.disabled():
            print(f"\nSIGKILL during adds: {cut} of 3 kills cut an add short; after each restart all "
                  f"{len(acknowledged)} acknowledged documents were whole and found")
        assert cut >= 2, "most kills should land while the add is still running"
    finally:
        server.stop()


def _try(call):
    try:
        return call()
    except httpx.TransportError:
        return None


@pytest.mark.slow
def test_a_rebuild_killed_midway_leaves_an_index_that_opens_with_every_acknowledged_write(
        seeds_data, tmp_path):
    server = serve_copy(seeds_data, tmp_path)
    doc_id, text = report(1)
    assert post(server.url, doc_id, text).status_code == 201
    server.stop()
    try:
        # `citeqa index build --force` re-embeds every document, those added over the API included.
        for delay in (0.5, 2.0):  # starting up; embedding (a --force build of the seeds takes about 5 s)
            build = subprocess.Popen([CLI, "index", "build", "--docs", str(SEEDS), "--data", str(server.data),
                                      "--force"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            time.sleep(delay)
            assert build.poll() is None, "the rebuild finished before it could be killed"
            build.kill()
            build.wait()
            server.start()
            check_holds(server.url, {doc_id: text})
            assert len(httpx.get(f"{server.url}/v1/documents").json()["documents"]) == 6
            server.stop()

        # Killed while re-deriving its index files at start.
        _damage(server.data)
        server.start(wait=False)
        deadline = time.time() + 60
        while not any("rebuilding" in w for w in _safe_warnings(server)) and time.time() < deadline:
            time.sleep(0.02)
        server.kill()
        server.start()
        check_holds(server.url, {doc_id: text})
    finally:
        server.stop()


def _damage(data: Path) -> Path:
    current = manifest.load(data / INDEX_DIR)
    path = derived.faiss_path(data / INDEX_DIR, current.generation, "chunks")
    path.write_bytes(b"not a faiss index" * 100)
    return path


def _safe_warnings(server: Server) -> list[str]:
    try:
        return warnings(server)
    except json.JSONDecodeError:  # a line being written
        return []


@pytest.mark.parametrize("damage", ["corrupted", "missing"])
def test_a_damaged_or_missing_faiss_file_is_rebuilt_from_sqlite_at_start_with_a_warning(
        seeds_data, tmp_path, damage):
    server = serve_copy(seeds_data, tmp_path)
    doc_id, text = report(2)
    assert post(server.url, doc_id, text).status_code == 201
    server.stop()
    path = _damage(server.data)
    if damage == "missing":
        path.unlink()
    server.start()
    assert any("rebuilding them from the database" in w for w in warnings(server)), warnings(server)
    check_holds(server.url, {doc_id: text})
    answer = httpx.post(f"{server.url}/v1/ask", json={"question": "Why does Moscow want Pokrovsk?"},
                        timeout=30).json()
    assert answer["citations"] and not answer["abstained"]
    server.stop()


def test_a_full_disk_refuses_writes_with_507_and_keeps_everything_stored(seeds_data, small_disk, capsys):
    data = small_disk / "data"
    data.mkdir()
    shutil.copy2(seeds_data / DB_NAME, data / DB_NAME)
    shutil.copytree(seeds_data / INDEX_DIR, data / INDEX_DIR)
    # The query model is exported outside this small disk (CITEQA_MODEL_CACHE, tests/support).
    server = Server("", data, {}, log=small_disk.parent / "server.log")
    server.start()
    try:
        fill(small_disk, leave=3_500_000)
        acknowledged, refused = {}, None
        for n in range(40):
            doc_id, text = report(200 + n, paragraphs=20)
            response = post(server.url, doc_id, text)
            if response.status_code != 201:
                refused = response
                break
            acknowledged[doc_id] = text
        assert acknowledged and refused is not None, "the disk should have filled up"
        with capsys.disabled():
            print(f"\nfull disk: {len(acknowledged)} documents stored, then {refused.status_code} "
                  f"{refused.json()['error']['message'][:60]}...")
        assert refused.status_code == 507, refused.text
        error = refused.json()["error"]
        assert error["code"] == "insufficient_storage" and error["message"].startswith("disk:")
        assert httpx.get(f"{server.url}/v1/documents/{doc_id}").status_code == 404
        check_holds(server.url, acknowledged)
        generations = {p.name.split(".")[0] for p in (data / INDEX_DIR).iterdir() if p.name != manifest.NAME}
        assert len(generations) == 1, "no half-written index files are left behind"
        assert httpx.post(f"{server.url}/v1/ask", json={"question": "Why does Moscow want Pokrovsk?"},
                          timeout=30).status_code == 200

        # Freeing space lets writes through again; everything survives a restart.
        (small_disk / "ballast").unlink()
        assert post(server.url, doc_id, text).status_code == 201
        acknowledged[doc_id] = text
        server.restart()
        check_holds(server.url, acknowledged)
    finally:
        server.stop()
