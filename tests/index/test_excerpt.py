"""The window of a document a shard sends the gateway reaches as far as composing an answer reads."""

from citeqa.answer import compose
from citeqa.index import excerpt


def test_the_window_reaches_as_far_as_compose_reads():
    # Back: a signature scanned for above a sentence that a predecessor (1), a speaker (3) and a block
    # (BLOCK_SENTENCES, and its edge) took up to 11 rows above the passage, plus the candidates' spill.
    assert excerpt.BEFORE >= compose.SECTION_SCAN + 1 + compose.SPEAKER_LOOKBACK + compose.BLOCK_SENTENCES \
        + 1 + excerpt.SPILL + 2
    # Forward: a block, a follower, an introduction's items, each edge's gap read one row further.
    assert excerpt.AFTER >= compose.BLOCK_SENTENCES + 1 + compose.INTRO_UNITS + excerpt.SPILL + 2
