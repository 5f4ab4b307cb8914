"""Tell article text from page furniture (ads, share buttons, comments, footers, photo credits).

Nothing is deleted: the stored text stays whole so every offset holds, and only the spans found
here are indexed. The rules are generic web-page patterns, not tuned to any one site.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from citeqa.index.records import Span

_FURNITURE = re.compile(
    r"""^(?:
        (?:story\ )?continues?\ below(?:\ this)?\ (?:ad|advert(?:isement)?)
      | advert(?:isement)?s?|sponsored(?:\ content)?|ad
      | (?:share|tweet|email|print|save)(?:\ (?:this|the))?(?:\ (?:post|article|story|page))?
      | share\ (?:on|via)\ .{1,40}
      | leave\ a\ (?:reply|comment)|post\ a\ comment|add\ a\ comment|\d*\ ?comments?|reply
      | source\ link|end\ of\ (?:the\ )?(?:article|story)
      | (?:post\ )?categor(?:y|ies)\s*:.*|tags?\s*:.*|filed\ under\s*:?.*
      | (?:read|see)\ (?:more|also|next)\b.*|related(?:\ (?:articles?|posts?|stories|content|reading))?
      | (?:you\ (?:may|might)\ also\ like|recommended(?:\ for\ you)?|most\ (?:read|popular))
      | (?:sign\ up|subscribe|follow\ us|log\ ?in|register)\b.*
      | skip\ to\ (?:main\ )?content|back\ to\ top|click\ here\b.*
      | (?:all\ rights\ reserved|copyright\b|©).*
      | .{0,60}\ all\ rights\ reserved\.?
    )[.!:]?$""",
    re.IGNORECASE | re.VERBOSE,
)
# A line after which the rest of the page is footer: attributions, comment threads.
_TAIL_START = re.compile(
    r"""^(?:source\s*:\s*\S.{0,40}|source\ link|leave\ a\ (?:reply|comment)|\d*\ ?comments?
      |end\ of\ (?:the\ )?article)$""",
    re.IGNORECASE | re.VERBOSE,
)
_CREDIT = re.compile(r"\[[^\]\n]{2,120}/[^\]\n]{2,120}\]\s*$|\((?:photo|image|credit|file)\b[^)]*\)\s*$",
                     re.I)
# A credit ends its line: only the line's tail is searched, which keeps a line of a million brackets linear.
_CREDIT_TAIL = 300
_PAREN_ONLY = re.compile(r"^\([^()]{1,60}\)$")
_CALL_TO_ACTION = re.compile(
    r"""\b(?:in\ the\ comments?\ (?:below|section)|comments?\ below|subscribe\ (?:to|for|now)
      |sign\ up\ (?:for|to|now)
      |follow\ us\ on|share\ (?:this\ (?:post|article|story)|your\ thoughts)|click\ here)\b""",
    re.IGNORECASE | re.VERBOSE,
)
_TERMINAL = tuple(".?!:;\"”’)…")


@dataclass(frozen=True)
class Line:
    start: int
    end: int
    text: str
    furniture: str | None = None  # why the line is left out, or None for article text


def _lines(text: str) -> list[Line]:
    """Non-blank lines; a line that breaks mid-sentence (next one starts in lower case) is joined on.
    Spans first, text last: joining a million short lines stays linear."""
    spans: list[list[int]] = []
    pos = 0
    for raw in text.split("\n"):
        stripped = raw.strip()
        if stripped:
            start = pos + len(raw) - len(raw.lstrip())
            end = start + len(stripped)
            prev = spans[-1] if spans else None
            if prev and stripped[0].islower() and text[prev[1] - 1] not in _TERMINAL \
                    and text.count("\n", prev[1], start) == 1:
                prev[1] = end
            else:
                spans.append([start, end])
        pos += len(raw) + 1
    return [Line(start, end, text[start:end]) for start, end in spans]


def _tail_after_gap(text: str, lines: list[Line]) -> int | None:
    """Start of a trailing block set off by a wider gap than any other: comments or a footer."""
    gaps = [(b.start, text.count("\n", a.end, b.start)) for a, b in zip(lines, lines[1:], strict=False)]
    if len(gaps) < 2:
        return None
    widest = max(width for _, width in gaps)
    at = [start for start, width in gaps if width == widest]
    if widest < 3 or len(at) > 1 or at[0] < 0.6 * len(text) or len(text) - at[0] > 0.25 * len(text):
        return None
    return at[0]


def classify_lines(text: str) -> list[Line]:
    """Every non-blank line of `text`, each marked as article text or furniture (with the reason)."""
    lines = _lines(text)
    if not lines:
        return []
    title = lines[0].text
    tail = _tail_after_gap(text, lines)
    out: list[Line] = [lines[0]]
    in_tail = False
    for i, line in enumerate(lines[1:], start=1):
        bare = line.text.lstrip("•·*-–—> ").strip()
        words = bare.split()
        short = len(words) <= 12
        reason = None
        if in_tail or (tail is not None and line.start >= tail):
            reason = "footer"
        elif line.text == title and i > 0:
            reason = "repeated title"
        elif short and _TAIL_START.match(bare) and line.start > 0.5 * len(text):
            reason, in_tail = "footer", True
        elif short and _FURNITURE.match(bare):
            reason = "page furniture"
        elif _CREDIT.search(line.text[-_CREDIT_TAIL:]) or _PAREN_ONLY.match(line.text):
            reason = "caption"
        elif len(words) <= 2 and not line.text.endswith(_TERMINAL):
            reason = "fragment"
        out.append(Line(line.start, line.end, line.text, reason))
    # A label without punctuation just above a caption is the picture's title or alt text.
    for i in range(len(out) - 1, 0, -1):
        if out[i].furniture == "caption" and out[i - 1].furniture is None and i - 1 > 0 \
                and not out[i - 1].text.endswith(_TERMINAL) and len(out[i - 1].text.split()) <= 12:
            out[i - 1] = Line(out[i - 1].start, out[i - 1].end, out[i - 1].text, "caption")
    return out


def find_content(text: str) -> list[Span]:
    """The spans of `text` that are article text, one per line."""
    return [Span(line.start, line.end) for line in classify_lines(text) if line.furniture is None]


def is_call_to_action(sentence: str) -> bool:
    """A sentence that addresses the reader about the page ("Share your thoughts below!") says nothing."""
    return bool(_CALL_TO_ACTION.search(sentence)) and len(sentence.split()) <= 20
