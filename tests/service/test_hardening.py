"""Attacks on a running `citeqa serve` with the `make run` defaults (no API key): each was found to work
once; each test shows it fails now. A real uvicorn process, and a real browser for the cross-site write."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from citeqa.bench.serving import free_port
from tests.support.invariants import MARKER, check_reply
from tests.support.servers import Server, serve_copy

SEED = "002_716abe37c6478c8a"
PLANTED = "Pokrovsk was handed over to Narnia in a treaty signed yesterday."
FOOTNOTED = ("Velmora Library\n\nThe Velmora public library opened in 1990 [2] and lends forty thousand "
             "books a year [7]. Its reading room seats ninety people.\n")


@pytest.fixture(scope="module")
def srv(seeds_data, tmp_path_factory):
    server = serve_copy(seeds_data, tmp_path_factory.mktemp("hardening"), CITEQA_MAX_BODY_MB="1",
                        CITEQA_LOG_FORMAT="text")
    yield server
    server.stop()


def seed_text(url: str) -> str:
    return httpx.get(f"{url}/v1/documents/{SEED}").json()["text"]


def upload(url: str, text: str, headers: dict | None = None, **form: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/documents", files={"file": ("x.txt", text.encode())}, data=form,
                      headers=headers or {}, timeout=120)


class EvilPage(BaseHTTPRequestHandler):
    """A page on another origin that, once opened, posts a replacement of a seed with no-cors fetch: a
    "simple" request, which browsers send without asking the server first."""

    target = ""

    def do_GET(self):
        body = f"""<!doctype html><title>cute cats</title><script>
        const form = new FormData();
        form.append("file", new Blob([{PLANTED!r}], {{type: "text/plain"}}), "x.txt");
        form.append("doc_id", {SEED!r});
        fetch({self.target + '/v1/documents'!r}, {{method: "POST", mode: "no-cors", body: form}})
          .then(() => document.title = "sent", () => document.title = "failed");
        </script>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_page_on_another_site_cannot_replace_a_document(srv, browser):
    before = seed_text(srv.url)
    EvilPage.target = srv.url
    evil = ThreadingHTTPServer(("127.0.0.1", free_port()), EvilPage)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
        page.wait_for_function("document.title !== 'cute cats'", timeout=30_000)
    finally:
        context.close()
        evil.shutdown()
    assert seed_text(srv.url) == before, "a page on another origin replaced a seed"
    assert PLANTED not in httpx.post(f"{srv.url}/v1/ask", json={"question": "Who was Pokrovsk handed to?"},
                                     timeout=30).text


def test_writes_from_another_site_are_refused_and_from_this_one_or_a_program_taken(srv):
    before = seed_text(srv.url)
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"}):
        refused = upload(srv.url, PLANTED, headers, doc_id=SEED)
        assert refused.status_code == 403, headers
        assert refused.json()["error"]["code"] == "cross_site"
        assert "CITEQA_CORS_ORIGINS" in refused.json()["error"]["message"]
        assert httpx.delete(f"{srv.url}/v1/documents/{SEED}", headers=headers).status_code == 403
    assert seed_text(srv.url) == before
    own_page = {"Origin": srv.url, "Sec-Fetch-Site": "same-origin"}
    assert upload(srv.url, "Own page\n\nWritten by the chat page itself.", own_page,
                  doc_id="own-page").status_code == 201
    assert upload(srv.url, "A program\n\nWritten by curl.", doc_id="program").status_code == 201


def test_only_configured_host_names_are_answered(srv):
    port = srv.url.rsplit(":", 1)[1]
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.2"):
        reply = httpx.get(f"{srv.url}/v1/documents", headers={"Host": host})
        assert reply.status_code == 400 and reply.json()["error"]["code"] == "host_not_allowed", host
        assert "CITEQA_ALLOWED_HOSTS" in reply.json()["error"]["message"]
        # The redirect that once sent the browser to http://evil.example/...
        assert httpx.get(f"{srv.url}/v1/documents/", headers={"Host": host}).status_code == 400
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST"):
        assert httpx.get(f"{srv.url}/v1/documents", headers={"Host": host}).status_code == 200, host


def test_a_bracketed_number_in_a_document_never_reads_as_a_marker(srv):
    assert upload(srv.url, FOOTNOTED, doc_id="velmora").status_code == 201
    body = httpx.post(f"{srv.url}/v1/ask", json={"question": "When did the Velmora library open?"},
                      timeout=30).json()
    assert not body["abstained"] and body["citations"][0]["doc_id"] == "velmora"
    assert "1990" in body["answer"]
    ids = {c["id"] for c in body["citations"]}
    assert {int(n) for n in MARKER.findall(body["answer"])} == ids  # no [2] or [7] of the document's own
    assert "[2]" in body["citations"][0]["quote"], "the quote stays exact"
    check_reply(body, lambda d: httpx.get(f"{srv.url}/v1/documents/{d}").json()["text"])
    chat = httpx.post(f"{srv.url}/v1/chat/completions", timeout=30, json={
        "messages": [{"role": "user", "content": "When did the Velmora library open?"}]}).json()
    content = chat["choices"][0]["message"]["content"]
    assert {int(n) for n in MARKER.findall(content)} == {c["id"] for c in chat["citations"]}


def test_titles_are_one_line_of_at_most_1000_characters(srv):
    created = upload(srv.url, "Ferry times\n\nThe Ostel ferry carries forty cars across the bay.",
                     doc_id="ferry", title="Ferry\n[9] forged: “line”\r\nand more")
    assert created.status_code == 201 and created.json()["title"] == "Ferry [9] forged: “line” and more"
    made = httpx.post(f"{srv.url}/v1/documents", json={"text": "Bus times\n\nThe bus leaves at ten.",
                                                       "doc_id": "bus", "title": "Bus\n\ntimes\t"})
    assert made.status_code == 201 and made.json()["title"] == "Bus times"
    for too_long in ("t" * 1001, "t" * 900_000):
        refused = upload(srv.url, "Long title\n\nA body.", doc_id="long", title=too_long)
        assert refused.status_code == 422 and refused.json()["error"]["message"].startswith("title:")
        refused = httpx.post(f"{srv.url}/v1/documents", json={"text": "A body.", "title": too_long})
        assert refused.status_code == 422 and "title" in refused.json()["error"]["message"]
    assert "long" not in httpx.get(f"{srv.url}/v1/documents").text
    chat = httpx.post(f"{srv.url}/v1/chat/completions", timeout=30, json={
        "messages": [{"role": "user", "content": "How many cars does the Ostel ferry carry?"}]}).json()
    assert chat["citations"] and chat["citations"][0]["title"] == "Ferry [9] forged: “line” and more"
    sources = chat["choices"][0]["message"]["content"].split("Sources:\n\n", 1)[1].splitlines()
    assert len(sources) == len(chat["citations"])  # one line per citation, none forged
    assert sources[0].startswith("- \\[1\\] Ferry \\[9\\] forged: “line” and more: ")  # no link, no list


@pytest.mark.parametrize("doc_id", ["nl\n", ".", "..", "...", "a/b", "x" * 129])
def test_a_doc_id_that_could_not_be_read_back_is_refused(srv, doc_id):
    for reply in (upload(srv.url, "Odd id\n\nSome text.", doc_id=doc_id),
                  httpx.post(f"{srv.url}/v1/documents", json={"text": "Some text.", "doc_id": doc_id})):
        assert reply.status_code == 422 and reply.json()["error"]["message"].startswith("doc_id"), doc_id
    assert upload(srv.url, "Dotted\n\nSome text.", doc_id=".hidden.v2").status_code == 201
    assert httpx.get(f"{srv.url}/v1/documents/.hidden.v2").status_code == 200


def test_deeply_nested_json_is_a_422_on_every_route(srv):
    deep = "[" * 10_000 + "]" * 10_000
    for route in ("/v1/documents", "/v1/ask", "/v1/chat/completions"):
        reply = httpx.post(f"{srv.url}{route}", content=deep, headers={"Content-Type": "application/json"})
        assert reply.status_code == 422 and reply.json()["error"]["code"] == "invalid_input", route
        assert reply.json()["error"]["message"].startswith("body")


def test_a_request_line_too_long_to_parse_gets_the_api_s_error_shape(srv):
    host, port = srv.url.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:  # httpx refuses such a URL
        sock.sendall(b"GET /v1/search?q=x" + b"&doc_ids=" + b"d" * 120 * 600 + b" HTTP/1.1\r\n"
                     b"Host: 127.0.0.1\r\n\r\n")
        reply = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"content-type: application/json" in head.lower()
    assert json.loads(body)["error"]["code"] == "bad_request"
    assert json.loads(body)["error"]["message"].startswith("request:")
    assert httpx.get(f"{srv.url}/healthz").status_code == 200


def test_a_chunked_body_over_the_limit_is_a_413_like_one_that_says_its_length(srv):
    big = b'{"text": "' + b"a" * 1_200_000 + b'"}'

    def chunked():
        for i in range(0, len(big), 64_000):
            yield big[i:i + 64_000]

    for route in ("/v1/documents", "/v1/ask", "/v1/chat/completions"):
        for content in (big, chunked()):
            reply = httpx.post(f"{srv.url}{route}", content=content, timeout=60,
                               headers={"Content-Type": "application/json"})
            assert reply.status_code == 413 and reply.json()["error"]["code"] == "too_large", route
    upload_body = (b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
                   b"Content-Type: text/plain\r\n\r\n" + b"word " * 300_000 + b"\r\n--b0undary--\r\n")
    streamed = (upload_body[i:i + 64_000] for i in range(0, len(upload_body), 64_000))
    reply = httpx.post(f"{srv.url}/v1/documents", content=streamed, timeout=60,
                       headers={"Content-Type": "multipart/form-data; boundary=b0undary"})
    assert reply.status_code == 413
    assert httpx.get(f"{srv.url}/healthz").status_code == 200


def test_a_small_write_does_not_wait_for_a_large_ones_embedding(srv):
    words = "harbour grain ferry lantern orchard quarry meadow furnace bridge cellar mill tannery".split()
    sentences = [f"The {words[i % 12]} of district {i} keeps {i * 7 % 1000} {words[(i * 5) % 12]} records."
                 for i in range(1200)]  # some 6 s of embedding
    large = "Registry\n\n" + "\n\n".join(" ".join(sentences[i:i + 6]) for i in range(0, 1200, 6))
    done: dict[str, float] = {}

    def put(name: str, text: str) -> None:
        reply = httpx.post(f"{srv.url}/v1/documents", json={"text": text, "doc_id": name}, timeout=300)
        assert reply.status_code == 201
        done[name] = time.perf_counter()

    writer = threading.Thread(target=put, args=("registry", large))
    writer.start()
    time.sleep(1.5)  # the large one is embedding by now (thousands of sentences)
    put("note", "Note\n\nThe mill closes at six.")
    writer.join()
    assert done["note"] < done["registry"], "the small write waited for the large one"


def test_a_control_character_in_a_path_cannot_forge_a_text_log_line(srv):
    httpx.get(f"{srv.url}/v1/nothing%0A2030-01-01 00:00:00 INFO forged line%0D")
    time.sleep(0.3)
    lines = srv.log_text().splitlines()
    assert any("/v1/nothing\\n2030-01-01" in line for line in lines)
    assert not any(re.match(r"\s*2030-01-01", line) for line in lines), "a forged line was written"


def test_a_401_names_the_scheme_it_wants(seeds_data, tmp_path):
    server = Server("", seeds_data, {"CITEQA_API_KEY": "k", "CITEQA_AUTH_READS": "true"}).start()
    try:
        for reply in (httpx.delete(f"{server.url}/v1/documents/{SEED}"),
                      httpx.get(f"{server.url}/v1/documents"),
                      httpx.post(f"{server.url}/v1/documents", json={"text": "x"},
                                 headers={"Authorization": "Bearer wrong"})):
            assert reply.status_code == 401 and reply.headers["www-authenticate"].startswith("Bearer")
    finally:
        server.stop()
