"""/v1/ask end to end against a real uvicorn process on the seeds: the contract on every answer."""

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from citeqa.eval import dataset
from tests.support.invariants import check_reply

QUESTIONS = dataset.load()


@pytest.fixture(scope="module")
def texts(server):
    cache = {}

    def text_of(doc_id):
        if doc_id not in cache:
            response = httpx.get(f"{server}/v1/documents/{doc_id}")
            assert response.status_code == 200
            cache[doc_id] = response.json()["text"]
        return cache[doc_id]

    return text_of


@pytest.fixture(scope="module")
def replies(server):
    with httpx.Client(base_url=server, timeout=30) as client:
        out = {}
        for q in QUESTIONS:
            response = client.post("/v1/ask", json={"question": q.question, "history": q.history})
            assert response.status_code == 200, (q.id, response.text)
            out[q.id] = response.json()
        return out


def test_every_answer_keeps_the_contract(replies, texts):
    for q in QUESTIONS:
        check_reply(replies[q.id], texts)


def test_off_topic_questions_abstain(replies):
    off_topic = [q for q in QUESTIONS if q.unanswerable and "near_topic" not in q.tags]
    assert len(off_topic) >= 5
    assert all(replies[q.id]["abstained"] for q in off_topic)


def test_a_follow_up_is_answered_from_the_document_its_history_points_to(replies):
    for q in (q for q in QUESTIONS if q.history):
        gold = {e.doc_id for e in q.evidence}
        cited = {c["doc_id"] for c in replies[q.id]["citations"]}
        assert cited & gold, q.id


def test_doc_ids_restrict_what_is_searched_and_cited(server):
    doc = "003_e36ebcee13c453f4"
    question = {"question": "Why does Moscow want Pokrovsk?", "doc_ids": [doc]}
    body = httpx.post(f"{server}/v1/ask", json=question, timeout=30).json()
    assert {p["doc_id"] for p in body["passages"]} == {doc}
    assert {c["doc_id"] for c in body["citations"]} <= {doc}


def test_curl_without_a_content_type_is_read_as_json(server):
    response = httpx.post(f"{server}/v1/ask", content=b'{"question": "Why does Moscow want Pokrovsk?"}',
                          headers={"content-type": "application/x-www-form-urlencoded"}, timeout=30)
    assert response.status_code == 200 and response.json()["citations"]


def test_search_defaults_to_the_configured_top_k(server):
    assert len(httpx.get(f"{server}/v1/search", params={"q": "Pokrovsk"}).json()["results"]) == 5


def test_metrics_count_requests_abstentions_and_the_index(server, replies):
    text = httpx.get(f"{server}/metrics").text
    assert 'citeqa_requests_total{method="POST",route="/v1/ask",status="200"}' in text
    assert "citeqa_request_seconds_bucket" in text
    assert "citeqa_documents 5.0" in text and "citeqa_chunks " in text
    samples = {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples["citeqa_abstentions_total"] >= sum(r["abstained"] for r in replies.values())
