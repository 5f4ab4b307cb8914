"""Hyphens at the end of a PDF's lines, and the control characters PDFium leaves in its text.

PDFium marks a letter's hyphen whose line break it dropped with \x02, whether the hyphen was a
hyphenation ("environ-ments") or part of the word ("well-structured"): the document's own spelling of
the word elsewhere tells which (Spelling).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

# Hyphens at a line's end. SOFT: PDFium's mark (\x02) for a letter's hyphen whose line break it dropped
# (CPDF_TextPage::IsHyphen: a letter before, a letter or digit after), and the soft hyphen; a hyphenation
# unless the document spells the word with a hyphen. HARD: hyphens PDFium left as they are, kept unless
# the document spells the word without one.
SOFT = ("\x02", "\u00ad")
HARD = ("-", "\u2010")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u00ad]")  # what a reader never sees: glyphs with no text too
WORD = re.compile(r"[\w-]+")
TAIL, HEAD = re.compile(r"[\w-]*$"), re.compile(r"[\w-]*")  # a text's last word part, its first
INNER_MARK = re.compile(r"([\w-]*\w)\x02([\w-]*)")


class Spelling:
    """The document's words as spelled inside its lines: the evidence for what a hyphen at a line's end
    was. PDFium's mark cannot tell "environ-ments" from "well-structured" (both a letter's hyphen before
    a letter); the document can, when it prints "environments" or "well-structured" elsewhere."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.words: Counter[str] = Counter()
        for line in lines:
            found = WORD.findall(line)
            if found and line.endswith(SOFT + HARD):
                found.pop()  # half a word, or a word whose hyphen is in question
            self.words.update(found)
        self.heads: Counter[str] = Counter()  # "meta-" of "meta-prefixed": the first parts of compounds
        for word, n in self.words.items():
            for i in range(1, len(word) - 1):
                if word[i] == "-":
                    self.heads[word[:i + 1]] += n

    def between(self, left: str, right: str, soft: bool) -> str:
        """What joins `left` and `right`, the word parts either side of a hyphen at a line's end: "" (a
        hyphenation), "-" (a compound) or "- " (a word ending in a hyphen, as "-NoValue-"), whichever
        spelling the document uses most; with no evidence, a soft hyphen is a hyphenation and a hard one is
        kept, as is one before a capital (a hyphenated word keeps its case: "Addison-Wesley")."""
        joined, compound = self.words[left + right], self.words[f"{left}-{right}"]
        alone = self.words[left + "-"] if self.words[left + "-"] > self.heads[left + "-"] else 0
        if not (joined or compound or alone):
            return "-" if not soft or (left[-1].islower() and right[:1].isupper()) else ""
        if joined >= max(compound, alone):
            return ""
        return "-" if compound >= alone else "- "

    def join(self, text: str, more: str) -> str:
        """Two lines of one paragraph or heading: a hyphen at the end of `text` as the document spells the
        word; other lines are joined with a space."""
        if not text.endswith(SOFT + HARD):
            return f"{text} {more}"
        mark, head = text[-1], text[:-1]
        if not re.match(r"\w", head[-1:]):  # a dash of its own (" -", "--"), not part of a word
            return f"{head}{'' if mark in SOFT else mark} {more}"
        left, right = TAIL.search(head).group(), HEAD.match(more).group()
        between = self.between(left, right, mark in SOFT)
        return head + (mark if between == "-" and mark in HARD else between) + more

    def clean(self, text: str) -> str:
        """A line's text with no control character (a glyph with no text, or PDFium's hyphen mark inside a
        line where our line break found no new line, resolved as at a line's end); a mark ending the line
        is kept for `join`."""
        mark = text[-1] if text.endswith(SOFT) else ""
        body = text[:-1] if mark else text
        if "\x02" in body:
            body = INNER_MARK.sub(lambda m: m[1] + self.between(m[1], m[2], True) + m[2], body)
        return (CONTROL.sub(lambda m: " " if m[0] in "\t\n\v\f\r" else "", body) + mark).strip()


def visible(text: str) -> str:
    """A text's last line as printed, when no line follows it to join: PDFium's mark was a hyphen."""
    if text.endswith(SOFT):
        return text[:-1] + ("-" if text[-1] == "\x02" else "")
    return text
