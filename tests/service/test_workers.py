"""`citeqa serve --workers 2`: two processes on one port share the index; a write through either one is
seen by both before its reply returns, and /metrics adds up both workers' counts."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.support.servers import serve_copy

DOC = {"doc_id": "zebras", "text": "Zebras of Lake Vrana\n\nThe zebras of Lake Vrana number forty-two and "
       "graze at dawn by the reeds."}


def _top(url: str) -> str | None:
    with httpx.Client(base_url=url, timeout=30) as fresh:  # a new connection: either worker may take it
        results = fresh.get("/v1/search", params={"q": "zebras of Lake Vrana", "k": 1}).json()["results"]
    return results[0]["doc_id"] if results else None


def _tops(url: str, n: int = 40) -> list[str | None]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: _top(url), range(n)))


def _wait_all_ready(url: str, seconds: float = 120) -> None:
    """Until 40 /readyz on new connections in a row say ready: both workers have loaded the index."""
    deadline = time.time() + seconds
    with ThreadPoolExecutor(8) as pool:
        while not all(pool.map(lambda _: httpx.get(f"{url}/readyz").status_code == 200, range(40))):
            assert time.time() < deadline, "a worker never became ready"
            time.sleep(0.5)


def _search_pids(log: str) -> set[int]:
    lines = (json.loads(line) for line in log.splitlines() if line.startswith("{"))
    return {line["process"] for line in lines if line.get("route") == "/v1/search"}


def test_two_workers_see_each_others_writes_before_the_reply(seeds_data, tmp_path):
    server = serve_copy(seeds_data, tmp_path, CITEQA_WORKERS="2", CITEQA_LOG_FORMAT="json",
                        CITEQA_LOG_LEVEL="INFO")
    try:
        _wait_all_ready(server.url)
        before = set(_tops(server.url))
        assert "zebras" not in before
        assert httpx.post(f"{server.url}/v1/documents", json=DOC, timeout=60).status_code == 201
        assert set(_tops(server.url)) == {"zebras"}  # whichever worker answers, the write is there
        assert httpx.delete(f"{server.url}/v1/documents/zebras", timeout=60).status_code == 204
        assert "zebras" not in set(_tops(server.url))
        assert len(_search_pids(server.log_text())) == 2, "both workers answered searches"

        metrics = httpx.get(f"{server.url}/metrics").text
        searched = re.search(r'citeqa_requests_total\{method="GET",route="/v1/search",status="200"\} (\S+)',
                             metrics)
        assert float(searched.group(1)) == 120  # 40 + 40 + 40, whichever worker counted them
        assert re.search(r"^citeqa_documents (\S+)", metrics, re.M).group(1) == "5.0"
    finally:
        server.stop()
