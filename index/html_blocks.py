"""HTML into blocks, with Lexbor (selectolax): an HTML5 parser in C that takes any markup, however
malformed or deep, in time linear in its size. The walk below keeps its own stack (no recursion).

Page furniture is left out by its markup, never by its wording: navigation, search, banners, footers,
forms, scripts and sidebars by their element or ARIA role, or by a class or id that names one of those
same landmarks. When the page marks its main content (`<main>`, `role="main"`), only that is read.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser, LexborNode

from citeqa.index.blocks import (
    ANCHOR_MARKS,
    CODE,
    DEFINITION,
    HEADING,
    LIST_ITEM,
    NOTE,
    PARAGRAPH,
    QUOTE,
    SIGNATURE,
    TABLE_ROW,
    Block,
    inline,
    sectioned,
    signature_name,
)
from citeqa.index.errors import InvalidInput

_DROP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "canvas", "iframe", "object",
                        "embed", "nav", "form", "button", "select", "input", "textarea", "head", "math",
                        "footer", "dialog", "-comment"})
_DROP_ROLES = frozenset({"navigation", "search", "banner", "contentinfo", "complementary", "menu", "menubar",
                         "toolbar", "dialog", "alertdialog", "tablist"})
# Class or id words that name a landmark: `div class="footer"` is a footer without the element.
_LANDMARK_WORDS = frozenset({"nav", "navbar", "navigation", "menu", "sidebar", "footer", "breadcrumb",
                             "breadcrumbs", "toc", "skip", "cookie", "cookies", "banner"})
_NOTE_WORDS = frozenset({"footnote", "footnotes", "note", "admonition", "warning", "tip", "caution",
                         "important", "hint", "attention", "danger", "seealso", "versionchanged",
                         "versionadded", "deprecated"})
_BLOCKS = frozenset({"p", "div", "section", "article", "main", "header", "h1", "h2", "h3", "h4", "h5", "h6",
                     "li", "ul", "ol", "dl", "dt", "dd", "blockquote", "pre", "table", "thead", "tbody",
                     "tfoot", "tr", "figure", "figcaption", "hr", "body", "address", "details", "summary",
                     "aside", "caption", "center", "fieldset", "legend", "html"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_WORDS = re.compile(r"[a-z]+")
# An HTML5 parser checks the open elements for every tag: time grows with depth times size. No real page
# nests past a few hundred levels, so deeper markup is refused, found by one linear scan of the tags.
MAX_DEPTH = 2000
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)")
_TAG_END = re.compile(r"[>\"']")
# Elements that never nest (void) or whose end tag may be left out: they do not count towards depth.
_FLAT = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
                   "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "thead",
                   "tbody", "tfoot", "colgroup", "caption", "rb", "rt", "rp", "html", "head", "body"})


def depth(html: str) -> int:
    """How deep the markup nests, roughly (implied end tags aside), in one pass: each tag is read to its
    `>` past quoted attribute values, so text inside an unclosed quote counts as no tag at all."""
    deepest = level = pos = 0
    while (match := _TAG.search(html, pos)) is not None:
        pos = match.end()
        while (end := _TAG_END.search(html, pos)) is not None and end.group() != ">":
            close = html.find(end.group(), end.end())  # the quote's other end
            if close < 0:
                return deepest  # an unclosed quote runs to the end: no more tags
            pos = close + 1
        if end is None:
            return deepest
        pos = end.end()
        if match.group(2).lower() not in _FLAT and not html.startswith("/>", end.start() - 1):
            level = max(0, level - 1) if match.group(1) else level + 1
            deepest = max(deepest, level)
    return deepest


def _words(node: LexborNode) -> set[str]:
    attrs = node.attributes
    return set(_WORDS.findall(f"{attrs.get('class') or ''} {attrs.get('id') or ''}".lower()))


def _dropped(node: LexborNode, top: bool) -> bool:
    """Furniture, by element, role, or a class or id naming a landmark. An <aside> or <header> inside an
    article is the article's own (a footnote, a byline); elsewhere they frame the page."""
    tag = node.tag
    if tag in _DROP_TAGS:
        return True
    if (node.attributes.get("role") or "").lower() in _DROP_ROLES:
        return True
    if node.attributes.get("hidden") is not None or node.attributes.get("aria-hidden") == "true":
        return True
    words = _words(node)
    if tag == "aside" and not words & _NOTE_WORDS:
        return True
    if tag == "header" and top:
        return True
    if tag == "a" and (node.text(deep=True) or "").strip() in ANCHOR_MARKS:
        return True
    return bool(words & _LANDMARK_WORDS) and tag != "body"


def _kind_of(tag: str, node: LexborNode, outer: str) -> str:
    if tag == "pre":
        return CODE
    if tag == "li":
        return LIST_ITEM
    if tag == "tr":
        return TABLE_ROW
    if tag == "dt":
        return SIGNATURE
    if tag == "blockquote":
        return QUOTE
    if tag in ("aside", "div") and _words(node) & _NOTE_WORDS:
        return NOTE
    return outer


class _Builder:
    def __init__(self):
        self.blocks: list[Block] = []
        self.buffer: list[str] = []
        self.kinds: list[str] = [PARAGRAPH]  # the kind of text written now, innermost last
        self.level = 0  # the heading being read, if any
        # The terms or API signatures whose descriptions (<dd>) are being read, innermost last: they
        # head what is in them, so "Defaults to 80" is indexed under "click.Context".
        self.owners: list[str] = []
        self.term = ""  # the last <dt> read, which owns the <dd> that follows it

    def text(self, value: str) -> None:
        self.buffer.append(value)

    def flush(self) -> None:
        if not self.buffer:
            return
        raw, self.buffer = "".join(self.buffer), []
        kind = HEADING if self.level else self.kinds[-1]
        if kind == CODE:
            body = "\n".join(line.rstrip() for line in raw.strip("\n").split("\n")).rstrip()
        else:
            body = inline(raw.replace("¶", ""))
            if kind == TABLE_ROW:
                body = body.strip(" |")
        if not body:
            return
        if kind == SIGNATURE and "(" not in body:
            kind = DEFINITION
        if kind in (SIGNATURE, DEFINITION) and self.kinds[-1] == SIGNATURE:
            self.term = signature_name(body) if kind == SIGNATURE else body[:80]
        self.blocks.append(Block(kind, body, self.level, tuple(o for o in self.owners if o)))

    def enter_description(self) -> None:
        self.owners.append(self.term)
        self.term = ""


def parse(html: str) -> tuple[str, list[Block]]:
    """The page's title and its blocks, in reading order, with their section paths."""
    nested = depth(html)
    if nested > MAX_DEPTH:
        raise InvalidInput(f"the markup nests {nested} levels deep, past the {MAX_DEPTH} any real page stays "
                           "under; is the file damaged?")
    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = inline(title_node.text(deep=True)) if title_node is not None else ""
    root = tree.css_first("main") or tree.css_first('[role="main"]') or tree.body or tree.root
    out = _Builder()
    if root is None:
        return title, []
    # (node, entering): a node is visited on the way in and, for blocks, on the way out.
    stack: list[tuple[LexborNode, bool]] = [(root, True)]
    in_article = 0
    while stack:
        node, entering = stack.pop()
        tag = node.tag
        if not entering:
            out.flush()
            if tag in _HEADINGS:
                out.level = 0
            else:
                out.kinds.pop()
            if tag == "dd":
                out.owners.pop()
            in_article -= tag in ("article", "section", "main")
            continue
        if tag == "-text":
            out.text(node.text_content or "")  # prose is made one line when flushed (blocks.inline)
            continue
        if node is not root and _dropped(node, top=in_article == 0):
            continue
        if tag == "br":
            if out.kinds[-1] == CODE:
                out.text("\n")
            else:
                out.flush()
            continue
        if tag in ("td", "th") and out.buffer:
            out.text(" | ")
        if tag in _BLOCKS:
            out.flush()
            if tag == "dd":
                out.enter_description()
            if tag in _HEADINGS:
                out.level = _HEADINGS[tag]
            else:
                outer = out.kinds[-1]
                out.kinds.append(outer if outer == CODE else _kind_of(tag, node, outer))
            in_article += tag in ("article", "section", "main")
            stack.append((node, False))
        children = []
        child = node.child
        while child is not None:
            children.append(child)
            child = child.next
        stack.extend((c, True) for c in reversed(children))
    out.flush()
    return title, sectioned(out.blocks)
