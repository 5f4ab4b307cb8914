"""Live documents end to end: add, ask, restart, delete, concurrent use, bad requests, the API key."""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from citeqa.bench.large import server_timing
from tests.support.invariants import check_reply
from tests.support.servers import serve_copy

KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
HARBOUR = ("Zorblat Harbour\n\nThe Zorblat harbour opened in 1911 on the northern shore of Lake Vessa. "
           "It handles twelve million tonnes of grain every year, most of it wheat bound for Ostrava.\n")
QUESTION = "How much grain does the Zorblat harbour handle?"


@pytest.fixture(scope="module")
def srv(seeds_data, tmp_path_factory):
    server = serve_copy(seeds_data, tmp_path_factory.mktemp("docs-api"), CITEQA_API_KEY=KEY)
    yield server
    server.stop()


def ask(url, question, **kw):
    response = httpx.post(f"{url}/v1/ask", json={"question": question, **kw}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def stored(url) -> dict:
    docs = httpx.get(f"{url}/v1/documents").json()["documents"]
    return {d["doc_id"]: (d["title"], d["chars"], d["chunks"]) for d in docs}


def text_getter(url):
    return lambda doc_id: httpx.get(f"{url}/v1/documents/{doc_id}").json()["text"]


def test_a_document_added_over_http_is_cited_survives_a_restart_and_is_gone_once_deleted(srv):
    # The first write loads the document model (a server that only answers never does): give it time.
    began = time.perf_counter()
    created = httpx.post(f"{srv.url}/v1/documents", json={"text": HARBOUR, "doc_id": "harbour"}, headers=AUTH,
                         timeout=60)
    took_ms = (time.perf_counter() - began) * 1000
    assert created.status_code == 201
    assert created.json() == {"doc_id": "harbour", "title": "Zorblat Harbour", "chunks": 1}
    # Where the write's time went, phase by phase, within the time the client waited.
    phases = server_timing(created.headers["server-timing"])
    assert list(phases) == ["embed", "tokenize", "wait", "commit"]
    assert all(ms >= 0 for ms in phases.values()) and phases["embed"] > 0
    assert sum(phases.values()) <= took_ms
    body = ask(srv.url, QUESTION)
    assert body["citations"][0]["doc_id"] == "harbour" and "twelve million tonnes" in body["answer"]
    check_reply(body, text_getter(srv.url))

    srv.restart()
    assert stored(srv.url)["harbour"][0] == "Zorblat Harbour"
    assert ask(srv.url, QUESTION)["citations"][0]["doc_id"] == "harbour"

    assert httpx.delete(f"{srv.url}/v1/documents/harbour", headers=AUTH).status_code == 204
    assert httpx.get(f"{srv.url}/v1/documents/harbour").status_code == 404
    body = ask(srv.url, QUESTION)
    assert all(c["doc_id"] != "harbour" for c in body["citations"])
    assert all(p["doc_id"] != "harbour" for p in body["passages"])
    srv.restart()
    assert "harbour" not in stored(srv.url)


def test_an_uploaded_html_file_is_reduced_to_text_and_replaced_by_a_second_upload(srv):
    page = (b"<html><head><title>Tallin Vale bees</title></head>"
            b"<body><p>Tallin Vale keeps 400 hives.</p></body>")
    files = {"file": ("bees.html", page, "text/html")}
    created = httpx.post(f"{srv.url}/v1/documents", files=files, headers=AUTH, timeout=60)
    assert created.status_code == 201 and created.json()["doc_id"] == "bees"
    assert "<p>" not in httpx.get(f"{srv.url}/v1/documents/bees").json()["text"]
    files = {"file": ("bees.txt", b"Tallin Vale bees\n\nTallin Vale now keeps 520 hives.\n", "text/plain")}
    assert httpx.post(f"{srv.url}/v1/documents", files=files, headers=AUTH, timeout=60).status_code == 201
    body = ask(srv.url, "How many hives does Tallin Vale keep?")
    assert "520 hives" in body["answer"] and "400 hives" not in body["answer"]
    assert httpx.delete(f"{srv.url}/v1/documents/bees", headers=AUTH).status_code == 204


def test_a_document_lists_its_blocks_and_a_citation_names_the_kind_of_its_quote(srv):
    notes = (b"# Kiln log\n\nThe kiln at Brask Mill fires stoneware at 1280 degrees.\n\n## Loading\n\n"
             b"- Stack the bisque ware on the lower shelf.\n- Leave a finger's gap between pots.\n\n"
             b"```\nkilnctl ramp --to 1280 --rate 150\nkilnctl hold --minutes 20\n```\n")
    files = {"file": ("kiln.md", notes, "text/markdown")}
    assert httpx.post(f"{srv.url}/v1/documents", files=files, headers=AUTH, timeout=60).status_code == 201
    doc = httpx.get(f"{srv.url}/v1/documents/kiln").json()
    text = doc["text"]
    drawn = [(b["kind"], text[b["start"]:b["end"]], b["level"]) for b in doc["blocks"]]
    assert drawn == [("heading", "Kiln log", 1),
                     ("paragraph", "The kiln at Brask Mill fires stoneware at 1280 degrees.", 0),
                     ("heading", "Loading", 2),
                     ("list_item", "Stack the bisque ware on the lower shelf.", 0),
                     ("list_item", "Leave a finger's gap between pots.", 0),
                     ("code", "kilnctl ramp --to 1280 --rate 150\nkilnctl hold --minutes 20", 0)]
    body = ask(srv.url, "Which kilnctl commands ramp and hold the kiln?")
    kinds = {c["kind"] for c in body["citations"] if c["doc_id"] == "kiln"}
    assert "code" in kinds, body["citations"]
    plain = httpx.get(f"{srv.url}/v1/documents/{next(iter(stored(srv.url)))}").json()
    assert {b["kind"] for b in plain["blocks"]} <= {"text", "heading", "paragraph"} and plain["blocks"]
    assert httpx.delete(f"{srv.url}/v1/documents/kiln", headers=AUTH).status_code == 204


def test_uploaded_pdf_and_word_files_are_cited_from_their_text(srv):
    """Real files (tests/support/realfiles.py): two pages of the Bash manual's PDF, a Word file."""
    from tests.index.test_formats import pages_of
    from tests.support.realfiles import bash_manuals, docx_files

    pdf = pages_of((bash_manuals() / "bashref.pdf").read_bytes(), [10, 11])
    created = httpx.post(f"{srv.url}/v1/documents", files={"file": ("quoting.pdf", pdf, "application/pdf")},
                         headers=AUTH, timeout=120)
    assert created.status_code == 201, created.text
    assert created.json()["doc_id"] == "quoting" and created.json()["chunks"] > 0
    body = ask(srv.url, "What is the Bash escape character?")
    check_reply(body, text_getter(srv.url))
    assert body["citations"] and body["citations"][0]["doc_id"] == "quoting"
    assert "backslash" in body["citations"][0]["quote"]
    word = (docx_files() / "tbl-cell-access.docx").read_bytes()
    created = httpx.post(f"{srv.url}/v1/documents", files={"file": ("cells.docx", word)}, headers=AUTH,
                         timeout=60)
    assert created.status_code == 201 and created.json()["doc_id"] == "cells", created.text
    assert httpx.get(f"{srv.url}/v1/documents/cells").json()["text"].startswith("1 | 2 | 3")
    for doc_id in ("quoting", "cells"):
        assert httpx.delete(f"{srv.url}/v1/documents/{doc_id}", headers=AUTH).status_code == 204


def test_an_uploaded_pdf_keeps_its_pages_and_its_file_until_it_is_deleted(srv):
    """Citations of every answering route name the page; GET /original gives back the very bytes."""
    from tests.index.test_formats import pages_of
    from tests.index.test_pages import letters, pdf_pages
    from tests.service.test_chat_api import stream_events
    from tests.support.realfiles import bash_manuals

    pdf = pages_of((bash_manuals() / "bashref.pdf").read_bytes(), [10, 11, 12])
    created = httpx.post(f"{srv.url}/v1/documents", files={"file": ("shellquotes.pdf", pdf)}, headers=AUTH,
                         timeout=120)
    assert created.status_code == 201, created.text
    doc = httpx.get(f"{srv.url}/v1/documents/shellquotes").json()
    assert doc["pages"][0] == 0 and len(doc["pages"]) == 3
    assert doc["pages"] == sorted(set(doc["pages"])) and doc["pages"][-1] < len(doc["text"])
    original = httpx.get(f"{srv.url}/v1/documents/shellquotes/original")
    assert original.status_code == 200 and original.content == pdf
    assert original.headers["content-type"] == "application/pdf"
    question = {"question": "What does ANSI-C quoting do?", "doc_ids": ["shellquotes"]}
    body = ask(srv.url, **question)
    check_reply(body, text_getter(srv.url))
    pages = pdf_pages(pdf)
    for c in body["citations"]:
        assert letters(c["quote"][:40]) in pages[c["page"] - 1], c
    assert all(isinstance(p["page"], int) for p in body["passages"])
    assert stream_events(srv.url, question)[1][-1][1]["citations"] == body["citations"]
    chat = httpx.post(f"{srv.url}/v1/chat/completions", timeout=30, json={
        "model": "citeqa", "messages": [{"role": "user", "content": question["question"]}],
        "doc_ids": ["shellquotes"]}).json()
    assert chat["citations"] == body["citations"]

    seed = "000_43ab17fb5869de75"
    assert httpx.get(f"{srv.url}/v1/documents/{seed}").json()["pages"] is None
    for doc_id, said in ((seed, "has no original file"), ("nope", "no document 'nope'")):
        missing = httpx.get(f"{srv.url}/v1/documents/{doc_id}/original")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        assert said in missing.json()["error"]["message"]
    assert httpx.delete(f"{srv.url}/v1/documents/shellquotes", headers=AUTH).status_code == 204
    assert httpx.get(f"{srv.url}/v1/documents/shellquotes/original").status_code == 404


def test_unreadable_pdf_and_word_uploads_get_a_clear_error_and_change_nothing(srv):
    before = stored(srv.url)
    for name, data, status, said in [("scan.pdf", b"%PDF-1.4 truncated", 422, "not a readable PDF"),
                                     ("memo.docx", b"PK\x03\x04 truncated", 422, "not a readable Word")]:
        refused = httpx.post(f"{srv.url}/v1/documents", files={"file": (name, data)}, headers=AUTH,
                             timeout=60)
        assert refused.status_code == status and said in refused.json()["error"]["message"], refused.text
        assert refused.json()["error"]["message"].startswith("file: ")
    assert stored(srv.url) == before


def test_asks_running_while_documents_come_and_go_see_one_state_or_the_other(srv):
    def churn(i):
        name = f"churn{i}"
        text = HARBOUR.replace("twelve", ["nine", "ten", "eleven"][i % 3])
        assert httpx.post(f"{srv.url}/v1/documents", json={"text": text, "doc_id": name},
                          headers=AUTH, timeout=60).status_code == 201
        assert httpx.delete(f"{srv.url}/v1/documents/{name}", headers=AUTH, timeout=60).status_code == 204

    def asking(_):
        body = ask(srv.url, QUESTION)
        for c in body["citations"]:
            if c["doc_id"].startswith("churn"):  # a live document: its quote must match the text it had
                number = ["nine", "ten", "eleven"][int(c["doc_id"][5:]) % 3]
                expected = HARBOUR.replace("twelve", number)
                assert expected[c["start"]:c["end"]] == c["quote"]
        return body

    with ThreadPoolExecutor(8) as pool:
        writes = [pool.submit(churn, i) for i in range(6)]
        reads = [pool.submit(asking, i) for i in range(40)]
        for f in writes + reads:
            f.result()
    assert not [d for d in stored(srv.url) if d.startswith("churn")]


BAD_ASKS = [
    ({}, 422, "question"), ({"question": ""}, 422, "question"), ({"question": "   \n"}, 422, "question"),
    ({"question": "x" * 2001}, 422, "question"), ({"question": 42}, 422, "question"),
    ({"question": "x", "top_k": 0}, 422, "top_k"), ({"question": "x", "top_k": 51}, 422, "top_k"),
    ({"question": "x", "top_k": "five"}, 422, "top_k"), ({"question": "x", "doc_ids": "000"}, 422, "doc_ids"),
    ({"question": "x", "doc_ids": ["../etc/passwd"]}, 422, "doc_ids"),
    ({"question": "x", "history": [{"role": "system", "content": "x"}]}, 422, "history"),
    ({"question": "x", "history": [{"role": "user", "content": "x"}] * 21}, 422, "history"),
]


@pytest.mark.parametrize("body, status, field", BAD_ASKS)
def test_malformed_questions_get_a_json_error_naming_the_field(srv, body, status, field):
    response = httpx.post(f"{srv.url}/v1/ask", json=body, timeout=30)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["message"].startswith(field), error


def test_bad_json_and_wrong_shapes_are_422_not_500(srv):
    for raw in (b"{bad", b"[]", b'"text"', b"", b"\xff\xfe", b"\xe9\xe9\xe9"):
        response = httpx.post(f"{srv.url}/v1/ask", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 422 and response.json()["error"]["message"].startswith("body"), raw


BAD_WRITES = [
    ("json", {"text": ""}, 422, "text"), ("json", {"text": "  \n "}, 422, "text"),
    ("json", {"text": "Some words here.", "doc_id": "../../etc"}, 422, "doc_id"),
    ("json", {"text": "Some words here.", "doc_id": "a" * 129}, 422, "doc_id"),
    ("json", {"title": "no text"}, 422, "text"), ("json", {"text": 5}, 422, "text"),
    ("file", ("notes.pdf", b"%PDF-1.4 words"), 422, "file"),
    ("file", ("notes.odt", b"PK\x03\x04 words"), 415, "notes.odt"),
    ("file", ("latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1")), 415, "latin1.txt"),
    ("file", ("nul.txt", b"abc\x00def"), 415, "nul.txt"),
    ("file", ("empty.md", b"   \n"), 422, "file"),
    ("file", ("big.txt", b"a" * 10_000_001), 413, "body"),
]


@pytest.mark.parametrize("kind, payload, status, field", BAD_WRITES)
def test_bad_documents_are_refused_and_nothing_stored_changes(srv, kind, payload, status, field):
    before = stored(srv.url)
    if kind == "json":
        response = httpx.post(f"{srv.url}/v1/documents", json=payload, headers=AUTH, timeout=60)
    else:
        response = httpx.post(f"{srv.url}/v1/documents", files={"file": payload}, headers=AUTH, timeout=60)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"].startswith(field)
    assert stored(srv.url) == before


def test_unknown_documents_are_404(srv):
    for response in (httpx.get(f"{srv.url}/v1/documents/nope"),
                     httpx.delete(f"{srv.url}/v1/documents/nope", headers=AUTH)):
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_writes_need_the_key_and_reads_stay_open(srv):
    before = stored(srv.url)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        response = httpx.post(f"{srv.url}/v1/documents", json={"text": HARBOUR}, headers=headers, timeout=60)
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
        seed = f"{srv.url}/v1/documents/000_43ab17fb5869de75"
        assert httpx.delete(seed, headers=headers).status_code == 401
    assert stored(srv.url) == before
    assert httpx.get(f"{srv.url}/v1/documents").status_code == 200
    assert httpx.get(f"{srv.url}/v1/search", params={"q": "Pokrovsk"}).status_code == 200
    assert httpx.get(f"{srv.url}/v1/info").json()["auth"] == {"writes": True, "reads": False}


def test_auth_reads_closes_the_reading_routes_too(seeds_data, tmp_path):
    server = serve_copy(seeds_data, tmp_path, CITEQA_API_KEY=KEY, CITEQA_AUTH_READS="1")
    try:
        assert httpx.post(f"{server.url}/v1/ask", json={"question": QUESTION}).status_code == 401
        assert httpx.get(f"{server.url}/v1/documents").status_code == 401
        assert httpx.get(f"{server.url}/v1/documents/000_43ab17fb5869de75/original").status_code == 401
        for route in ("/v1/ask/stream", "/v1/chat/completions"):
            assert httpx.post(f"{server.url}{route}", json={"question": QUESTION}).status_code == 401
        assert httpx.get(f"{server.url}/v1/info").json()["auth"] == {"writes": True, "reads": True}
        assert httpx.post(f"{server.url}/v1/ask", json={"question": QUESTION}, headers=AUTH,
                          timeout=30).status_code == 200
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        # the command line sends CITEQA_API_KEY with --url; without it, one line says what was refused
        citeqa = [str(Path(sys.executable).with_name("citeqa")), "ask", QUESTION, "--url", server.url,
                  "--json"]
        env = {k: v for k, v in os.environ.items() if k != "CITEQA_API_KEY"}
        refused = subprocess.run(citeqa, capture_output=True, text=True, env=env, timeout=120)
        assert refused.returncode == 1 and "answered 401" in refused.stderr, refused.stderr
        keyed = subprocess.run(citeqa, capture_output=True, text=True, env={**env, "CITEQA_API_KEY": KEY},
                               timeout=120)
        assert keyed.returncode == 0 and json.loads(keyed.stdout)["question"] == QUESTION, keyed.stderr
    finally:
        server.stop()


def test_hostile_uploads_are_refused_or_parsed_while_the_server_keeps_answering(srv):
    """Parsing runs in a worker thread, in time linear in the file: /healthz answers throughout."""
    deep = ("<div>" * 300_000).encode()
    refused = httpx.post(f"{srv.url}/v1/documents", files={"file": ("deep.html", deep, "text/html")},
                         headers=AUTH, timeout=60)
    assert refused.status_code == 422 and refused.json()["error"]["message"].startswith("file: the markup")
    long_line = ("The slipway at Vessa takes one barge at a time. " * 300).encode()  # 15 kB on one line
    with ThreadPoolExecutor(1) as pool:
        upload = pool.submit(httpx.post, f"{srv.url}/v1/documents", headers=AUTH, timeout=300,
                             files={"file": ("slipway.txt", long_line, "text/plain")})
        waits = []
        while not upload.done():
            began = time.perf_counter()
            assert httpx.get(f"{srv.url}/healthz", timeout=10).status_code == 200
            waits.append(time.perf_counter() - began)
            time.sleep(0.05)
        assert upload.result().status_code == 201, upload.result().text
    assert len(waits) > 5 and max(waits) < 2.0, f"slowest /healthz during the upload: {max(waits):.2f} s"
    assert httpx.delete(f"{srv.url}/v1/documents/slipway", headers=AUTH).status_code == 204
