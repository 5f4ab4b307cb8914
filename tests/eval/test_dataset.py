"""The evaluation set is sound: unique ids, and every evidence quote is an exact slice of its document."""

from collections import Counter

from citeqa.eval import dataset
from tests.support import SEEDS


def test_ids_are_unique_and_quotes_are_exact_substrings():
    questions = dataset.load()
    assert len(questions) >= 60
    assert not [i for i, n in Counter(q.id for q in questions).items() if n > 1]
    texts = {p.stem: p.read_text(encoding="utf-8") for p in SEEDS.glob("*.txt")}
    for q in questions:
        for ev in q.evidence:
            assert ev.quote in texts[ev.doc_id], (q.id, ev.quote)
        assert q.unanswerable == (not q.evidence), q.id


def test_the_set_covers_every_document_and_each_kind_of_question():
    questions = dataset.load()
    tagged = Counter(t for q in questions for t in q.tags)
    assert tagged["paraphrase"] >= 10 and tagged["near_topic"] >= 3
    assert sum(len({e.doc_id for e in q.evidence}) >= 2 for q in questions) >= 6
    assert sum(bool(q.history) for q in questions) >= 5
    assert sum(q.unanswerable for q in questions) >= 10
    assert {e.doc_id for q in questions for e in q.evidence} == {p.stem for p in SEEDS.glob("*.txt")}
    assert all(q.answer and (q.unanswerable or q.facts) for q in questions)
