"""Pack sentences into overlapping chunks that fit the embedding model, breaking only between sentences."""

from __future__ import annotations

from collections.abc import Callable

from citeqa.index.records import Chunk, Sentence
from citeqa.index.sentences import stable_id


def _runs(text: str, sentences: list[Sentence]) -> list[list[Sentence]]:
    """Runs of sentences with only white space between them and one section: a chunk never spans
    left-out text, and starts anew at a heading."""
    runs: list[list[Sentence]] = []
    for sent in sentences:
        last = runs[-1][-1] if runs else None
        if last and not text[last.end:sent.start].strip() and last.section == sent.section:
            runs[-1].append(sent)
        else:
            runs.append([sent])
    return runs


def chunk_sentences(doc_id: str, title: str, text: str, sentences: list[Sentence],
                    count_tokens: Callable[[str], int], max_tokens: int, overlap_tokens: int) -> list[Chunk]:
    """Greedy packing: fill a chunk up to `max_tokens`, then start the next one with the last
    sentences of this one (up to `overlap_tokens`) so a fact on a boundary is found in either."""
    if overlap_tokens >= max_tokens:
        raise ValueError(f"overlap_tokens ({overlap_tokens}) must be smaller than max_tokens ({max_tokens})")
    chunks: list[Chunk] = []

    def emit(group: list[Sentence]) -> None:
        start, end = group[0].start, group[-1].end
        words = text[start:end]
        chunk_id = stable_id(doc_id, start, words)
        chunks.append(Chunk(chunk_id, doc_id, title, start, end, words, group[0].section))

    for run in _runs(text, sentences):
        sizes = [count_tokens(s.text) for s in run]
        i = 0
        while i < len(run):
            j, total = i, 0
            while j < len(run) and (j == i or total + sizes[j] <= max_tokens):
                total += sizes[j]
                j += 1
            # The sum of sentence sizes is close to, not exactly, the chunk's size: check the real text.
            while j - i > 1 and count_tokens(text[run[i].start:run[j - 1].end]) > max_tokens:
                j -= 1
            emit(run[i:j])
            if j >= len(run):
                break
            back, kept = j, 0
            while back - 1 > i and kept + sizes[back - 1] <= overlap_tokens:
                back -= 1
                kept += sizes[back]
            i = back
    return chunks
