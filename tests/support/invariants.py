"""The invariants shared/API.md promises for every /v1/ask response, as one checking function."""

from __future__ import annotations

import re

from citeqa.answer.compose import ABSTAIN_TEXT, WORD_JOINER

MARKER = re.compile(r"\[(\d+)\]")


def check_reply(body: dict, text_of) -> None:
    """Assert every promise of the contract; `text_of(doc_id)` gives a document's stored text."""
    citations = body["citations"]
    passages = body["passages"]
    assert passages, "passages are returned even when the answer abstains"
    for p in passages:
        assert text_of(p["doc_id"])[p["start"]:p["end"]] == p["text"]
    if body["abstained"]:
        assert citations == [] and body["answer"] == ABSTAIN_TEXT
        return
    ids = [c["id"] for c in citations]
    assert 1 <= len(ids) <= 4 and ids == list(range(1, len(ids) + 1))
    named = [int(n) for n in MARKER.findall(body["answer"])]
    assert set(named) == set(ids), "every marker names a citation and every citation is named"
    for c in citations:
        assert text_of(c["doc_id"])[c["start"]:c["end"]] == c["quote"], "citations are verifiable"
        assert c["doc_id"] in {p["doc_id"] for p in passages}, "citations come from retrieved documents"
    # Every statement carries a marker and states exactly the words of what it cites.
    statements = [s.strip() for s in MARKER.split(body["answer"])[0::2] if s.strip()]
    assert len(statements) == len(named)
    for statement, n in zip(statements, named, strict=True):
        # A bracketed number of the document's own has a word joiner after its "[" (not a marker).
        assert statement.replace(WORD_JOINER, "") == " ".join(citations[n - 1]["quote"].split())
