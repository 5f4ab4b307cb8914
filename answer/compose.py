"""Compose an extractive answer: pick the sentences of the retrieved passages that answer, and cite them.

Every statement of the answer is a stored sentence quoted verbatim, so each citation is grounded by
construction: `text[start:end] == quote`. Nothing is embedded here; sentence vectors come from the
index and the question's vector from the retrieval step.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from citeqa.answer.kinds import answer_check
from citeqa.index import lexical
from citeqa.index.blocks import CODE, HEADING, LIST_ITEM, SIGNATURE, TABLE_ROW
from citeqa.index.pages import page_at
from citeqa.index.records import Passage
from citeqa.index.snapshot import Snapshot

ABSTAIN_TEXT = "The documents do not answer this question."
MAX_SENTENCES = 4
COVERAGE_WEIGHT = 0.3  # weight of the question's (IDF-weighted) content words found in a sentence
CONTEXT_SHARE = 0.5  # credit for question words found only in the sentences either side
MMR_LAMBDA = 0.7  # relevance against novelty when picking the next sentence (Carbonell & Goldstein, 1998)
KEEP_MARGIN = 0.15  # a further sentence must score within this of the best one
NEAR_DUPLICATE = 0.9  # cosine above which two sentences say the same thing
ALREADY_SAID = 0.5  # share of a sentence's words in the previous answer that makes it a repeat
BLOCK_SENTENCES = 4  # a paragraph or list item of up to this many sentences may be cited whole
BLOCK_MARGIN = 0.4  # a sentence of the block comes along if it scores within this of the one it joins

# Openers that point back to an earlier sentence: the sentence alone would not make sense.
_DEPENDENT = re.compile(
    r"^[\"“‘']?(he|she|it|they|this|that|these|those|his|her|its|their|them|such|but|however|also|"
    r"and|yet|still|instead|then|there|here|both|the latter|the former)\b", re.IGNORECASE)
# A quote whose speaker is only a pronoun: "..., he said." The reader needs the sentence naming him.
_UNNAMED_SPEAKER = re.compile(
    r"[,”\"’']\s*(he|she|they)\s+(said|says|added|adds|told|tells|wrote|writes|explained|noted|argued|warned)"
    r"\b[^.!?]{0,40}[.!?][\"”’']?$", re.IGNORECASE)
# A second question joined to the first: "..., and what month has it stretched into?"
_TWO_PARTS = re.compile(r"\band (what|which|how|who|whom|when|where|why|is|are|does|do|did|can|should)\b",
                        re.IGNORECASE)
MIN_WORDS = 4  # a unit of fewer words ("Default: 5") is a fragment: it states nothing on its own
INTRO_UNITS = 8  # list items, rows or code blocks a sentence ending in ":" brings along, at most
INTRO_CHARS = 1200  # and no more characters of them than this
SPEAKER_LOOKBACK = 3  # sentences searched back for the one naming the speaker
# A parameter's description opens with its name: "width (int) - the width of the bar".
_PARAMETER = re.compile(r"\s*([A-Za-z_]\w*)\b")
SECTION_SCAN = 200  # sentences searched back for the API signature that states a parameter's default
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w’'-]+")
# Identifiers: snake_case or dotted code names, and capitals long enough not to be an acronym that the
# text may spell out ("FAQ"): NO_COLOR, VISUAL, max_content_width, CliRunner.invoke.
# A bracketed number in a document's own words ("opened in 1990 [2].", a footnote reference): in the
# answer it would read as a citation marker, naming another citation or none. A word joiner (U+2060,
# invisible) after its "[" keeps it as it looks while no marker pattern matches it; the quote stays exact.
_BRACKETED_NUMBER = re.compile(r"\[(?=\d+\])")
WORD_JOINER = "\u2060"
_IDENTIFIER = re.compile(r"(?<![\w.])(?:\w+_\w+|[A-Z][A-Z0-9]{4,})(?![\w])")


@dataclass(frozen=True)
class Citation:
    id: int
    doc_id: str
    title: str
    chunk_id: str
    quote: str
    start: int
    end: int
    score: float
    page: int | None = None  # the 1-based page of a paginated document (a PDF) the quote starts on
    # The kind of block the quote is in (paragraph, code, list_item, heading, text...): a client shows a
    # quote of code as code, with its line breaks, rather than as one line of the answer.
    kind: str = "text"

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Answer:
    statements: list[str]  # the answer, one cited statement each ("... [1]"), or the abstention
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    support: float = 0.0  # the best sentence's score: what the abstention threshold is compared with

    @property
    def answer(self) -> str:
        return " ".join(self.statements)


@dataclass(frozen=True)
class Candidate:
    row: int  # sentence row in the snapshot
    chunk_id: str
    score: float
    joins: bool = False  # cited as one with the unit before it (a heading and its line, a list and its intro)


def names(text: str) -> list[str]:
    """Capitalised words that are not sentence openers: a cheap stand-in for named entities."""
    return [m.group(0) for m in _NAME.finditer(text.strip())]


def states_something(sentence: str, title: str, kind: str = "text") -> bool:
    """Questions, the title and headings state nothing an answer could rest on. In a document parsed
    into structure a heading is known by its kind; in plain text a short unpunctuated line is taken
    for one."""
    text = sentence.strip().rstrip(" ”\"’'»)")
    if text.endswith("?") or " ".join(text.split()) == " ".join(title.split()):
        return False
    if kind != "text":
        return kind != HEADING
    heading = not text.endswith((".", "!", ":", ";")) and not any(ch.isdigit() for ch in text)
    return not (heading and len(text.split()) <= 12)


def _states_something(row: int, snap: Snapshot) -> bool:
    return states_something(snap.sentence(row), snap.documents[snap.sentence_docs[row]].title,
                            snap.sentence_kinds[row])


def _fragment(row: int, snap: Snapshot) -> bool:
    """Words of a structured document too few to state anything alone ("Default: 5"); a signature or
    code says what it says however short."""
    kind = snap.sentence_kinds[row]
    return kind not in ("text", SIGNATURE, CODE) and len(snap.sentence(row).split()) < MIN_WORDS


def _under_heading(row: int, snap: Snapshot) -> bool:
    return _same_doc(row, row - 1, snap) and snap.sentence_kinds[row - 1] == HEADING \
        and bool(snap.sentence_chunks[row - 1])


def _citable(row: int, snap: Snapshot) -> bool:
    """What an answer may cite: a unit that states something; a fragment only right under its heading,
    which is then cited with it ("depthLimit (Number) Default: 5")."""
    return _states_something(row, snap) and (not _fragment(row, snap) or _under_heading(row, snap))


def unknown_names(question: str, snap: Snapshot) -> list[str]:
    """Names and identifiers in the question that no document mentions: the collection cannot be
    about them.

    A name counts as mentioned when a word of the collection starts with its first five letters, so
    "German" finds "Germany" and "Zelensky" finds "Zelenskyy". Short acronyms are left out: "FAQ" may
    be spelled out in the text. An identifier (`NO_COLOR`, `max_content_width`, `VISUAL`) must be
    found whole: code names are not inflected.
    """
    return [name for name, key in mention_keys(question) if not snap.mentions(key)]


def mention_keys(question: str) -> list[tuple[str, str]]:
    """(name, the prefix a word of the collection must start with) for each name `unknown_names` checks."""
    out = []
    for name in names(question):
        stem = re.split(r"[’'-]", name)[0]  # "Kyiv's" is about Kyiv
        if stem.isupper() or _IDENTIFIER.fullmatch(stem):
            continue
        out.append((name, stem.lower()[:5]))
    for ident in dict.fromkeys(m.group(0) for m in _IDENTIFIER.finditer(question)):
        out.append((ident, ident.lower()))
    return out


def is_dependent(sentence: str) -> bool:
    return bool(_DEPENDENT.match(sentence.strip()))


def _mid_thought(row: int, snap: Snapshot) -> bool:
    """A prose unit that opens in lower case inside its paragraph continues the one before it (a
    sentence split too early: "... e.g. the default"), and is not cited without it."""
    text = snap.sentence(row).lstrip()
    if not text[:1].islower() or snap.sentence_kinds[row] in (CODE, SIGNATURE, LIST_ITEM, TABLE_ROW):
        return False
    return _same_paragraph(row - 1, snap)


def _coverage(question_terms: list[str], sentence_terms: frozenset[str], snap: Snapshot) -> float:
    total = sum(snap.idf(t) for t in question_terms)
    if total <= 0:
        return 0.0
    return sum(snap.idf(t) for t in question_terms if t in sentence_terms) / total


def _same_doc(a: int, b: int, snap: Snapshot) -> bool:
    return snap.same_doc(a, b)


def _window(passages: list[Passage], snap: Snapshot) -> list[tuple[int, str]]:
    """The sentences of the passages, plus the one just before and just after each passage.

    A chunk edge can fall between a statement and the sentence that names who made it; one sentence
    of spill-over on each side lets the answer reach it. Pairs are (sentence row, chunk id holding it).
    """
    out: dict[int, str] = {}
    for p in passages:
        row = snap.chunk_row(p.chunk_id)
        if row is None or not snap.chunk_sentences[row]:
            continue
        rows = snap.chunk_sentences[row]
        for s in rows:
            out.setdefault(s, p.chunk_id)
        for s in (rows[0] - 1, rows[-1] + 1):
            if _same_doc(rows[0], s, snap) and snap.sentence_chunks[s]:
                out.setdefault(s, snap.chunk_ids[snap.sentence_chunks[s][0]])
    return list(out.items())


def candidates(question: str, vector: np.ndarray, passages: list[Passage], snap: Snapshot) -> list[Candidate]:
    """Every sentence of the passages, scored: cosine to the question plus weighted word coverage.

    Question words found only in the neighbouring sentences or the headings above count at
    CONTEXT_SHARE: "according to a former Kremlin official" is often said in the sentence before the
    one that states the fact, and "click.pause" in the heading over "Defaults to ...".
    """
    terms = list(dict.fromkeys(lexical.tokenize([question])[0])) if question.strip() else []
    out = []
    for s, chunk_id in _window(passages, snap):
        if not _citable(s, snap):
            continue
        own = snap.sentence_terms[s]
        around = frozenset().union(snap.section_terms[s], *(snap.sentence_terms[n] for n in (s - 1, s + 1)
                                                            if _same_doc(s, n, snap)))
        covered = _coverage(terms, own, snap) + CONTEXT_SHARE * _coverage(terms, around - own, snap)
        dense = float(snap.sentence_vector(s) @ vector)
        out.append(Candidate(s, chunk_id, dense + COVERAGE_WEIGHT * covered))
    return sorted(out, key=lambda c: (-c.score, c.row))


def _select(ranked: list[Candidate], snap: Snapshot) -> list[Candidate]:
    """MMR over the candidates close enough to the best; near-duplicates never both make it."""
    pool = [c for c in ranked if c.score >= ranked[0].score - KEEP_MARGIN]
    vecs = {c.row: snap.sentence_vector(c.row) for c in pool}
    chosen: list[Candidate] = []
    while pool and len(chosen) < MAX_SENTENCES:
        def mmr(c: Candidate) -> float:
            overlap = max((float(vecs[c.row] @ vecs[o.row]) for o in chosen), default=0.0)
            return MMR_LAMBDA * c.score - (1 - MMR_LAMBDA) * overlap

        best = max(pool, key=mmr)
        pool.remove(best)
        if any(float(vecs[best.row] @ vecs[o.row]) > NEAR_DUPLICATE for o in chosen):
            continue
        chosen.append(best)
    return chosen


def _with_predecessors(chosen: list[Candidate], snap: Snapshot) -> list[Candidate]:
    """A sentence that leans on the one before it ("He said...") brings it along, or is passed over."""
    out: list[Candidate] = []
    rows = {c.row for c in chosen}
    for c in chosen:
        if is_dependent(snap.sentence(c.row)) or _mid_thought(c.row, snap):
            prev = c.row - 1
            if not (_same_doc(c.row, prev, snap) and snap.sentence_chunks[prev]):
                continue
            # After a heading or a question the sentence opens its section: nothing to bring along.
            opens = not _states_something(prev, snap)
            if not opens and prev not in rows:
                if len(out) + 2 > MAX_SENTENCES:
                    continue
                out.append(_joined(prev, c, snap))
                rows.add(prev)
        out.append(c)
    return out[:MAX_SENTENCES]


def _joined(row: int, holder: Candidate, snap: Snapshot, joins: bool = False) -> Candidate:
    """Sentence `row`, brought along by `holder`: in `holder`'s chunk when that holds it, at its score."""
    holders = [snap.chunk_ids[r] for r in snap.sentence_chunks[row]]
    return Candidate(row, holder.chunk_id if holder.chunk_id in holders else holders[0], holder.score, joins)


def _gap(row: int, snap: Snapshot) -> str | None:
    """The text between sentence `row` and the next one, or None when the next is in another document."""
    if row < 0 or not _same_doc(row, row + 1, snap):
        return None
    return snap.documents[snap.sentence_docs[row]].text[int(snap.sentence_ends[row]):
                                                        int(snap.sentence_starts[row + 1])]


def _same_paragraph(row: int, snap: Snapshot) -> bool:
    """Whether sentence `row` and the next one are in one block: no blank line between them."""
    gap = _gap(row, snap)
    return gap is not None and "\n\n" not in gap


def _with_followers(chosen: list[Candidate], snap: Snapshot) -> list[Candidate]:
    """The sentence right after a chosen one in its paragraph that leans on it ("It will return a member
    of the ParameterSource enum.") comes along: it says more about the same thing."""
    out, rows = list(chosen), {c.row for c in chosen}
    for c in chosen:
        nxt = c.row + 1
        if nxt in rows or not (_same_paragraph(c.row, snap) and snap.sentence_chunks[nxt]):
            continue
        if is_dependent(snap.sentence(nxt)) and _citable(nxt, snap):
            out.append(_joined(nxt, c, snap))
            rows.add(nxt)
    return out


def _block(row: int, snap: Snapshot) -> list[int]:
    """The sentence rows of the block (paragraph, list item) holding `row`: no blank line between them."""
    rows = [row]
    for step in (-1, 1):
        r = row
        while (len(rows) <= BLOCK_SENTENCES and _same_paragraph(min(r, r + step), snap)
               and snap.sentence_chunks[r + step]):
            r += step
            rows.append(r)
    return sorted(rows)


def _with_blocks(chosen: list[Candidate], snap: Snapshot, scores: dict[int, float]) -> list[Candidate]:
    """A chosen sentence brings the rest of its paragraph or list item when that is short and the rest
    is close to it in score: a fact is often stated over two sentences ("Pass temp_dir to control where
    the temporary directory is created. The directory will not be removed by Click in this case.")."""
    out, rows = list(chosen), {c.row for c in chosen}
    for c in chosen:
        block = _block(c.row, snap)
        if len(block) > BLOCK_SENTENCES:
            continue
        for r in block:
            if r not in rows and scores.get(r, -1.0) >= c.score - BLOCK_MARGIN:
                out.append(_joined(r, c, snap))
                rows.add(r)
    return out


def _signature_of(row: int, snap: Snapshot) -> int | None:
    """The API signature above `row` that gives the default of the parameter `row` describes ("width
    (int) - ..." under "progressbar(..., width=36)"): searched back through the sections that hold
    this one ("click.progressbar > Parameters" is inside "click.progressbar")."""
    section = snap.sentence_sections[row]
    named = _PARAMETER.match(snap.sentence(row))
    if not section or named is None:
        return None
    default = re.compile(rf"\b{re.escape(named.group(1))}\s*=")
    prev = row - 1
    while row - prev <= SECTION_SCAN and _same_doc(row, prev, snap) and \
            section.startswith(snap.sentence_sections[prev]) and snap.sentence_sections[prev]:
        text = snap.sentence(prev)
        if "(" in text and default.search(text):
            return prev
        prev -= 1
    return None


def _with_signatures(chosen: list[Candidate], snap: Snapshot) -> list[Candidate]:
    """A parameter's description brings the signature that states its default value."""
    out, rows = list(chosen), {c.row for c in chosen}
    for c in chosen:
        found = _signature_of(c.row, snap)
        if found is not None and found not in rows and snap.sentence_chunks[found]:
            out.append(_joined(found, c, snap))
            rows.add(found)
    return out


def _with_structure(chosen: list[Candidate], snap: Snapshot) -> list[Candidate]:
    """What a unit needs around it to be read: a fragment its heading, and a sentence that opens a list
    or an example ("... there are two options:") the items or code that follow it."""
    out: list[Candidate] = []
    rows = {c.row for c in chosen}
    for c in chosen:
        if _fragment(c.row, snap):
            if c.row - 1 not in rows:
                out.append(_joined(c.row - 1, c, snap))
                rows.add(c.row - 1)
            out.append(replace(c, joins=True))
            continue
        out.append(c)
        if not snap.sentence(c.row).rstrip().endswith(":"):
            continue
        size, nxt = 0, c.row + 1
        while (nxt - c.row <= INTRO_UNITS and _same_doc(c.row, nxt, snap) and snap.sentence_chunks[nxt]
               and snap.sentence_kinds[nxt] in (LIST_ITEM, CODE, TABLE_ROW) and size < INTRO_CHARS):
            if nxt not in rows:
                out.append(_joined(nxt, c, snap, True))
                rows.add(nxt)
            size += len(snap.sentence(nxt))
            nxt += 1
    return out


def _with_speakers(chosen: list[Candidate], snap: Snapshot) -> list[Candidate]:
    """A quote closed by "he said" brings the nearest sentence before it that names someone (within
    SPEAKER_LOOKBACK sentences of the same document), unless the answer holds one already."""
    out, rows = list(chosen), {c.row for c in chosen}
    for c in chosen:
        if not _UNNAMED_SPEAKER.search(snap.sentence(c.row).strip()):
            continue
        for prev in range(c.row - 1, c.row - 1 - SPEAKER_LOOKBACK, -1):
            if not (_same_doc(c.row, prev, snap) and snap.sentence_chunks[prev]):
                break
            if prev in rows:
                break
            if names(snap.sentence(prev)) and len(out) < MAX_SENTENCES:
                out.append(_joined(prev, c, snap))
                rows.add(prev)
                break
    return out


def _reading_order(chosen: list[Candidate], snap: Snapshot) -> list[Candidate]:
    """Documents in order of their best sentence; sentences within a document in text order."""
    doc_rank: dict[str, int] = {}
    for c in chosen:
        doc_rank.setdefault(snap.sentence_docs[c.row], len(doc_rank))
    return sorted(chosen, key=lambda c: (doc_rank[snap.sentence_docs[c.row]], c.row))


def _already_said(said: str, snap: Snapshot) -> Callable[[Candidate], bool]:
    """A sentence whose words are mostly in the previous answer: a follow-up wants something new."""
    said_terms = set(lexical.tokenize([said])[0]) if said.strip() else set()

    def repeats(c: Candidate) -> bool:
        own = snap.sentence_terms[c.row]
        return bool(said_terms) and len(own & said_terms) >= ALREADY_SAID * len(own)

    return repeats


def compose(question: str, vector: np.ndarray, passages: list[Passage], snap: Snapshot,
            threshold: float, asked: str | None = None, said: str = "") -> Answer:
    """The answer to `question` from `passages`, or an abstention when the support is too weak.

    It abstains when the best sentence that could answer (see `answer_types`) scores under
    `threshold`, or when the question as `asked` (before condensing) names someone or something that
    no document mentions.
    """
    asked = asked or question
    repeats = _already_said(said, snap)
    ranked = [c for c in candidates(question, vector, passages, snap) if not repeats(c)]
    scores = {c.row: c.score for c in ranked}
    best = ranked[0].score if ranked else 0.0
    # Only a sentence of the kind asked for can answer, and only if it is about as relevant as the best.
    fits = answer_check(asked)
    ranked = [c for c in ranked if c.score >= best - KEEP_MARGIN]
    fitting = [c for c in ranked if fits(snap.sentence(c.row))]
    support = fitting[0].score if fitting else 0.0
    if not fitting or support < threshold or unknown_names(asked, snap):
        return Answer([ABSTAIN_TEXT], True, [], support)
    # A question in two parts ("when did it begin, and how long has it lasted?") wants more than the
    # kind asked for first: the selection draws on every close sentence, the best fitting one included.
    chosen = _select(ranked if _TWO_PARTS.search(asked) else fitting, snap)
    if fitting[0] not in chosen:
        chosen = chosen[:MAX_SENTENCES - 1] + [fitting[0]]
    chosen = _with_speakers(_with_predecessors(chosen, snap), snap)
    chosen = _with_followers(_with_blocks(chosen, snap, scores), snap)
    chosen = _with_structure(_with_signatures(chosen, snap), snap)
    chosen = _reading_order(chosen, snap)
    if not chosen:
        return Answer([ABSTAIN_TEXT], True, [], support)
    citations, parts = [], []
    for n, group in enumerate(_grouped(chosen, snap), start=1):
        doc = snap.documents[snap.sentence_docs[group[0].row]]
        start, end = int(snap.sentence_starts[group[0].row]), int(snap.sentence_ends[group[-1].row])
        quote = doc.text[start:end]
        score = round(max(c.score for c in group), 4)
        citations.append(Citation(n, doc.doc_id, doc.title, group[0].chunk_id, quote, start, end, score,
                                  page_at(doc.pages, start), str(snap.sentence_kinds[group[0].row])))
        parts.append(f"{unmarked(quote)} [{n}]")
    return Answer(parts, False, citations, support)


def unmarked(quote: str) -> str:
    """A quote as it reads in an answer: on one line, and with no bracketed number that reads as a marker."""
    return _BRACKETED_NUMBER.sub("[" + WORD_JOINER, " ".join(quote.split()))


def _grouped(chosen: list[Candidate], snap: Snapshot) -> list[list[Candidate]]:
    """Sentences next to each other in one block become one citation (one quote, one statement); at
    most MAX_SENTENCES citations are kept, the best-scored, in reading order."""
    groups: list[list[Candidate]] = []
    for c in chosen:
        if groups and c.row == groups[-1][-1].row + 1:
            gap = _gap(c.row - 1, snap)
            if gap is not None and not gap.strip() and ("\n\n" not in gap or c.joins):
                groups[-1].append(c)
                continue
        groups.append([c])
    if len(groups) > MAX_SENTENCES:
        keep = sorted(range(len(groups)), key=lambda i: (-max(c.score for c in groups[i]), i))[:MAX_SENTENCES]
        groups = [groups[i] for i in sorted(keep)]
    return groups
