"""/v1/ask/stream and the OpenAI-compatible /v1/chat/completions, against a real uvicorn process.

The chat route is driven by the official `openai` client, as any chat tool would drive it.
"""

import json
import re
from html import unescape

import httpx
import openai
import pytest
from markdown_it import MarkdownIt

from citeqa.answer.compose import ABSTAIN_TEXT
from tests.support.invariants import check_reply

QUESTION = "Why does Moscow want Pokrovsk?"
OFF_TOPIC = "What is the boiling point of mercury?"


def stream_events(server, body) -> tuple[httpx.Response, list[tuple[str, dict]]]:
    """The events of one /v1/ask/stream response, parsed by the SSE rules (event, data lines, blank line)."""
    events = []
    with httpx.stream("POST", f"{server}/v1/ask/stream", json=body, timeout=30) as response:
        event, data = "message", []
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            elif not line and data:
                events.append((event, json.loads("\n".join(data))))
                event, data = "message", []
    return response, events


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key="not-needed", max_retries=0)


@pytest.fixture(scope="module")
def text_of(server):
    return lambda doc_id: httpx.get(f"{server}/v1/documents/{doc_id}").json()["text"]


def without_timings(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "timings_ms"}


@pytest.mark.parametrize("question", [QUESTION, OFF_TOPIC])
def test_the_stream_sends_passages_then_the_answer_in_pieces_then_the_whole_reply(server, text_of, question):
    response, events = stream_events(server, {"question": question})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    names = [name for name, _ in events]
    assert names[0] == "passages" and names[-1] == "done" and set(names[1:-1]) == {"delta"}
    done = events[-1][1]
    check_reply(done, text_of)
    assert events[0][1]["passages"] == done["passages"]
    assert "".join(data["text"] for name, data in events if name == "delta") == done["answer"]
    if done["abstained"]:
        assert done["answer"] == ABSTAIN_TEXT
    else:
        assert names.count("delta") == len(done["citations"]), "one piece per cited statement"
    plain = httpx.post(f"{server}/v1/ask", json={"question": question}, timeout=30).json()
    assert without_timings(plain) == without_timings(done)


def test_the_stream_refuses_bad_input_with_a_json_error_before_streaming(server):
    response = httpx.post(f"{server}/v1/ask/stream", json={"question": "   "})
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("question")
    response = httpx.post(f"{server}/v1/ask/stream", json={"question": QUESTION, "top_k": 0})
    assert response.status_code == 422 and "top_k" in response.json()["error"]["message"]


def test_chat_completions_answer_with_markers_a_sources_list_and_structured_citations(server, client):
    completion = client.chat.completions.create(model="citeqa",
                                                messages=[{"role": "user", "content": QUESTION}])
    asked = httpx.post(f"{server}/v1/ask", json={"question": QUESTION}, timeout=30).json()
    content = completion.choices[0].message.content
    assert completion.model == "citeqa" and completion.choices[0].finish_reason == "stop"
    answer, _ = content.split("\n\nSources:\n\n")
    assert answer == asked["answer"]
    # As a strict CommonMark renderer shows it: the Sources a list, one item a citation, read as written
    html = MarkdownIt("commonmark").render(content)
    items = [unescape(re.sub(r"<[^>]+>", "", item)) for item in re.findall(r"<li>(.*?)</li>", html, re.S)]
    assert len(items) == len(asked["citations"]) >= 1
    for item, citation in zip(items, asked["citations"], strict=True):
        assert item == f"[{citation['id']}] {citation['title']}: “{' '.join(citation['quote'].split())}”"
    assert completion.model_extra["citations"] == asked["citations"]


def test_usage_counts_tokens_with_the_models_tokenizer_and_streams_end_with_it(client, embedder):
    messages = [{"role": "user", "content": QUESTION}]
    whole = client.chat.completions.create(model="citeqa", messages=messages)
    content = whole.choices[0].message.content
    assert whole.usage.prompt_tokens == embedder.count_tokens(QUESTION) > 0
    assert whole.usage.completion_tokens == embedder.count_tokens(content) > 0
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens
    assert whole.choices[0].logprobs is None
    chunks = list(client.chat.completions.create(model="citeqa", messages=messages, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    assert all(c.usage is None for c in chunks[:-1])
    plain = list(client.chat.completions.create(model="citeqa", messages=messages, stream=True))
    assert all(c.usage is None and c.choices for c in plain)


def test_streamed_chat_completions_add_up_to_the_same_reply(client):
    messages = [{"role": "user", "content": QUESTION}]
    whole = client.chat.completions.create(model="citeqa", messages=messages)
    chunks = list(client.chat.completions.create(model="citeqa", messages=messages, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed == whole.choices[0].message.content
    assert len([c for c in chunks if c.choices[0].delta.content]) >= 2, "the reply arrives in pieces"
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.model_extra["citations"] == whole.model_extra["citations"]


def test_earlier_messages_are_the_history_and_system_messages_are_ignored(server, client):
    first = "Who is Emil Kastehelmi?"
    earlier = httpx.post(f"{server}/v1/ask", json={"question": first}, timeout=30).json()
    follow_up = "How does he see the outlook for Ukraine?"
    history = [{"role": "user", "content": first}, {"role": "assistant", "content": earlier["answer"]}]
    completion = client.chat.completions.create(model="citeqa", messages=[
        {"role": "system", "content": "You are a helpful assistant."}, *history,
        {"role": "user", "content": [{"type": "text", "text": follow_up}]}])
    asked = httpx.post(f"{server}/v1/ask", json={"question": follow_up, "history": history},
                       timeout=30).json()
    assert not asked["abstained"]
    assert completion.model_extra["citations"] == asked["citations"]
    alone = httpx.post(f"{server}/v1/ask", json={"question": follow_up}, timeout=30).json()
    assert alone["citations"] != asked["citations"], "the history changed the answer"


def test_an_abstention_has_no_sources_list(client):
    completion = client.chat.completions.create(model="citeqa",
                                                messages=[{"role": "user", "content": OFF_TOPIC}])
    assert completion.choices[0].message.content == ABSTAIN_TEXT
    assert completion.model_extra["citations"] == [] and completion.model_extra["abstained"] is True


def test_the_model_is_listed_and_bad_requests_are_refused_in_the_openai_error_shape(client):
    assert [m.id for m in client.models.list()] == ["citeqa"]
    assert client.models.retrieve("citeqa").id == "citeqa"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-4o")
    assert caught.value.body["message"].startswith("model_id:")
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    assert caught.value.body["message"].startswith("model:")
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.chat.completions.create(model="citeqa", messages=[{"role": "assistant", "content": "Hello"}])
    assert caught.value.body["message"].startswith("messages:")
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.chat.completions.create(model="citeqa", messages=[{"role": "user", "content": "x" * 2001}])
    assert caught.value.body["message"].startswith("messages.0.content:")


def test_the_page_and_its_files_are_served_with_a_strict_content_security_policy(server):
    page = httpx.get(f"{server}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert httpx.head(f"{server}/").status_code == 200
    for name in ("app.js", "style.css", "favicon.svg"):
        asset = httpx.get(f"{server}/static/{name}")
        assert asset.status_code == 200 and asset.headers["content-security-policy"] == csp
    assert httpx.get(f"{server}/static/../service/config.py").status_code == 404


def test_info_tells_a_client_whether_writes_need_a_key(server):
    info = httpx.get(f"{server}/v1/info").json()
    assert info["auth"] == {"writes": False, "reads": False}
    assert info["limits"]["question_chars"] == 2000 and ".md" in info["upload_types"]
