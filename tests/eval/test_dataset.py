"""The evaluation set is sound: unique ids, and every evidence quote is an exact slice of its document."""

from collections import Counter

from eval import dataset
from tests.conftest import SEEDS


def test_ids_are_unique_and_quotes_are_exact_substrings():
    questions = dataset.load()
    assert len(questions) >= 60
    assert not [i for i, n in Counter(q.id for q in questions).items() if n > 1]
    texts = {p.stem: p.read_text(encoding="utf-8") for p in SEEDS.glob("*.txt")}
    for q in questions:
        for ev in q.evidence:
            assert ev.quote in texts[ev.doc_id], (q.id, ev.quote)
        assert q.unanswerable == (not q.evidence), q.id
