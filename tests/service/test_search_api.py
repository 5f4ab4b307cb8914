"""The HTTP search route against a real uvicorn process serving the seeds."""


import httpx
import pytest


def test_health_and_readiness(server):
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server}/readyz").status_code == 200


def test_search_returns_passages_with_offsets_into_the_documents(server, engine):
    body = httpx.get(f"{server}/v1/search", params={"q": "Why does Moscow want Pokrovsk?", "k": 4}).json()
    assert body["query"] == "Why does Moscow want Pokrovsk?" and len(body["results"]) == 4
    texts = engine.snapshot().documents
    for p in body["results"]:
        assert texts[p["doc_id"]].text[p["start"]:p["end"]] == p["text"]
    assert any("springboard" in p["text"] for p in body["results"])


@pytest.mark.parametrize("params, field", [({"q": "  "}, "q"), ({}, "q"), ({"q": "x", "k": 0}, "k"),
                                           ({"q": "x", "k": "many"}, "k"), ({"q": "x" * 2001}, "q")])
def test_bad_search_requests_get_a_json_error_naming_the_field(server, params, field):
    response = httpx.get(f"{server}/v1/search", params=params)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["message"].startswith(field)
