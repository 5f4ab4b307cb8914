"""What an operator relies on: CORS closed unless opened, a request id on every response and log line,
JSON logs that never hold an API key or a user's question, and a server that seeds an empty volume."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from citeqa.bench.serving import free_port
from citeqa.index.snapshot import DB_NAME
from citeqa.service.app import create_app
from citeqa.service.config import Settings
from tests.support import MODEL_CACHE, SEEDS
from tests.support.servers import Server, serve_copy

KEY = "k3y-that-must-never-be-logged"
ASKED = "What does the zyxwv committee decide?"
PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization,content-type"}


@pytest.fixture(scope="module")
def open_to_app(seeds_data, tmp_path_factory):
    """A server whose CORS setting lets https://app.example (and only it) call from a browser."""
    server = Server("", seeds_data, {"CITEQA_CORS_ORIGINS": "https://app.example, https://other.example/"},
                    log=tmp_path_factory.mktemp("cors") / "server.log").start()
    yield server
    server.stop()


def test_cors_is_closed_by_default(server):
    for origin in ("https://app.example", "null"):
        preflight = httpx.options(f"{server}/v1/ask", headers={"Origin": origin, **PREFLIGHT})
        assert "access-control-allow-origin" not in preflight.headers
        plain = httpx.get(f"{server}/v1/documents", headers={"Origin": origin})
        assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers


def test_cors_opens_only_to_the_configured_origins(open_to_app):
    url = open_to_app.url
    preflight = httpx.options(f"{url}/v1/ask", headers={"Origin": "https://app.example", **PREFLIGHT})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    reply = httpx.post(f"{url}/v1/ask", json={"question": "Why does Moscow want Pokrovsk?"},
                       headers={"Origin": "https://other.example"}, timeout=30)
    assert reply.headers["access-control-allow-origin"] == "https://other.example"
    assert "x-request-id" in reply.headers["access-control-expose-headers"].lower()

    refused = httpx.options(f"{url}/v1/ask", headers={"Origin": "https://evil.example", **PREFLIGHT})
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    plain = httpx.get(f"{url}/v1/documents", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in plain.headers


def test_every_request_has_an_id_in_its_reply_and_in_one_json_log_line(seeds_data, tmp_path):
    server = serve_copy(seeds_data, tmp_path, CITEQA_API_KEY=KEY)
    try:
        given = httpx.get(f"{server.url}/v1/search", params={"q": ASKED},
                          headers={"X-Request-ID": "trace-42"})
        assert given.headers["x-request-id"] == "trace-42"
        unsafe = httpx.get(f"{server.url}/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
        made = unsafe.headers["x-request-id"]
        assert made != "bad id\twith spaces" and len(made) == 32
        wrong = httpx.post(f"{server.url}/v1/documents", json={"text": "Some words."},
                           headers={"Authorization": "Bearer wrong-k3y-also-secret"}, timeout=60)
        right = httpx.post(f"{server.url}/v1/documents", json={"text": "The zyxwv committee met.",
                                                               "doc_id": "zyxwv"},
                           headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
        asked = httpx.post(f"{server.url}/v1/ask", json={"question": ASKED}, timeout=30)
        missing = httpx.get(f"{server.url}/v1/documents/nothing-here")
        statuses = [r.status_code for r in (wrong, right, asked, missing)]
        assert statuses == [401, 201, 200, 404]
        replies = [given, unsafe, wrong, right, asked, missing]
        assert len({r.headers["x-request-id"] for r in replies}) == len(replies)
    finally:
        server.stop()

    text = server.log_text()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    access = {line["request_id"]: line for line in lines if line["logger"] == "citeqa.access"}
    for reply in replies:
        line = access[reply.headers["x-request-id"]]
        assert (line["method"], line["path"], line["status"]) == (
            reply.request.method, reply.request.url.path, reply.status_code)
        assert line["ms"] >= 0
    # Keys, and what people ask, stay out of the logs.
    for secret in (KEY, "wrong-k3y-also-secret", "zyxwv committee", "zyxwv+committee"):
        assert secret not in text, secret


def test_text_logs_are_available_for_a_terminal(seeds_data, tmp_path):
    server = Server("", seeds_data, {"CITEQA_LOG_FORMAT": "text"}, log=tmp_path / "server.log").start()
    reply = httpx.get(f"{server.url}/healthz")
    server.stop()
    line = next(line for line in server.log_text().splitlines() if "GET /healthz 200" in line)
    assert reply.headers["x-request-id"] in line and not line.startswith("{")


def test_logs_are_text_on_a_terminal_and_json_elsewhere_by_default(monkeypatch):
    from citeqa.service import logs

    for tty, formatter in ((True, "citeqa.service.logs.TextFormatter"),
                           (False, "pythonjsonlogger.json.JsonFormatter")):
        monkeypatch.setattr(sys.stderr, "isatty", lambda tty=tty: tty)
        assert logs.config("INFO", "auto")["formatters"]["main"]["()"] == formatter


def test_serve_says_where_to_open_the_page(seeds_data, tmp_path):
    server = Server("", seeds_data, {}, log=tmp_path / "server.log").start()
    server.stop()
    assert f"the chat page will be at {server.url}/ " in server.log_text()


def test_bad_settings_stop_the_server_with_one_clear_line(seeds_data, tmp_path):
    server = Server("", seeds_data, {"CITEQA_LOG_FORMAT": "xml"}, log=tmp_path / "server.log")
    said = "error: CITEQA_LOG_FORMAT: Input should be 'auto', 'json' or 'text'"
    with pytest.raises(RuntimeError, match=said):
        server.start()


def test_serve_seed_builds_an_empty_data_folder_then_answers_from_it(tmp_path):
    """What `make run` does on a fresh clone: the first start indexes seeds/ while /healthz answers."""
    seeds = tmp_path / "seeds"  # two of them: the same path as all five, in half the time
    seeds.mkdir()
    for name in ("000_43ab17fb5869de75.txt", "002_716abe37c6478c8a.txt"):
        shutil.copy(SEEDS / name, seeds)
    server = Server("", tmp_path / "data", {"CITEQA_SEED_DIR": str(seeds)}, log=tmp_path / "server.log")
    server.start(wait=False)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{server.url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "not_ready", "still building"
        server.wait_ready()
        listed = httpx.get(f"{server.url}/v1/documents").json()["documents"]
        assert sorted(d["doc_id"] for d in listed) == sorted(p.stem for p in seeds.glob("*.txt"))
        reply = httpx.post(f"{server.url}/v1/ask", json={"question": "Why does Moscow want Pokrovsk?"},
                           timeout=30).json()
        assert reply["citations"] and not reply["abstained"]
        server.restart()  # an index once built is never re-seeded
        assert "building it from" not in server.log_text().split("Application startup complete")[-1]
    finally:
        server.stop()


def damaged(data: Path) -> Path:
    data.mkdir()
    (data / DB_NAME).write_bytes(b"this is not a database, whatever its name says" * 100)
    return data


def test_an_index_that_cannot_load_stops_serve_with_the_reason(tmp_path):
    command = [str(Path(sys.executable).with_name("citeqa")), "serve", "--port", str(free_port()),
               "--data", str(damaged(tmp_path / "data"))]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CITEQA_LOG_FORMAT": "text"})
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the index in ") and "not a database" in last, done.stderr[-2000:]


def test_readiness_says_why_the_index_cannot_load_instead_of_asking_to_wait(tmp_path):
    settings = Settings(data_dir=damaged(tmp_path / "data"), model_cache=MODEL_CACHE)
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        deadline = time.time() + 60
        while (ready := client.get("/readyz")).json()["error"]["code"] == "not_ready":
            assert time.time() < deadline
            time.sleep(0.1)
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "index_failed"
        assert "not a database" in ready.json()["error"]["message"]
        asked = client.post("/v1/ask", json={"question": "anything?"})
        assert asked.status_code == 503 and asked.json()["error"]["code"] == "index_failed"
        assert client.get("/healthz").status_code == 200
