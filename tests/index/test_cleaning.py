"""Page furniture stays out of the index, and nothing else moves."""

import pytest

from citeqa.index.cleaning import classify_lines, find_content, is_call_to_action
from citeqa.index.loading import parse
from tests.support import SEEDS

DEBRIS = [
    "STORY CONTINUES BELOW THIS AD", "Share this Post", "Leave a Reply", "Source link", "End of Article",
    "Post category:World News", "234Radio", "Thank you for this update Cathy",
    "Europe is the only hope", "Anatolii Stepanov/Reuters", "copy-1762355428",
    "Share your thoughts in the comments below",
]


@pytest.fixture(scope="module")
def seed_chunks(engine):
    snap = engine.snapshot()
    return [snap.chunk(row) for row in range(len(snap.chunk_ids))]


@pytest.mark.parametrize("phrase", DEBRIS)
def test_seed_debris_is_in_no_chunk_and_no_sentence(engine, seed_chunks, phrase):
    snap = engine.snapshot()
    assert not any(phrase in c.text for c in seed_chunks)
    for row, doc_id in enumerate(snap.sentence_docs):
        text = snap.documents[doc_id].text[snap.sentence_starts[row]:snap.sentence_ends[row]]
        assert phrase not in text


def test_article_text_around_debris_is_kept(seed_chunks):
    text = " ".join(c.text for c in seed_chunks)
    for kept in ["Russian troops captured roughly 505 square kilometres in November",
                 "Pokrovsk also sits at the intersection of several strategic highways and railroads.",
                 "Trump, of course, lapped it up.",
                 "What are your predictions for the future of US-Russia relations?"]:
        assert kept in text


def test_content_spans_point_into_the_unchanged_text():
    for path in sorted(SEEDS.glob("*.txt")):
        doc = parse(path.read_bytes(), path.name)
        for span in find_content(doc.text):
            piece = doc.text[span.start:span.end]
            assert piece == piece.strip() and piece


def test_generic_page_furniture_is_recognised():
    page = ("Otters of Lake Vrana\nThe lake holds forty otters in all.\nAdvertisement\nShare on Facebook\n"
            "Read more: Beavers of the north\nThey eat fish and sleep in dens.\n"
            "© 2024 Lake News. All rights reserved.")
    marked = {line.text: line.furniture for line in classify_lines(page)}
    assert marked["The lake holds forty otters in all."] is None
    assert marked["They eat fish and sleep in dens."] is None
    assert all(marked[t] for t in ["Advertisement", "Share on Facebook", "Read more: Beavers of the north",
                                    "© 2024 Lake News. All rights reserved."])


def test_a_sentence_that_merely_mentions_comments_is_kept():
    assert not is_call_to_action("Critics left comments on the ministry's proposal for three weeks, "
                                 "and the minister answered every one of them in writing in a long report.")
    assert is_call_to_action("Share your thoughts in the comments below!")
