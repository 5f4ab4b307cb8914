"""HTML and Markdown become blocks with a kind and a section path, rendered as a reader sees them."""

import time

import pytest

from citeqa.index import html_blocks, markdown_blocks
from citeqa.index.blocks import CODE, HEADING, LIST_ITEM, NOTE, PARAGRAPH, SIGNATURE, TABLE_ROW, render
from citeqa.index.errors import InvalidInput
from citeqa.index.loading import parse

PAGE = """<!DOCTYPE html>
<?xml version="1.0"?>
<html><head><title>functools &#8212; Library</title><script>var x = 1;</script></head>
<body>
<div class="related" role="navigation"><h3>Navigation</h3><ul><li><a href="i.html">index</a></li></ul></div>
<div class="document"><div class="body" role="main">
<section id="functools">
<h1>functools<a class="headerlink" href="#functools">¶</a></h1>
<p>The functools module is for
higher-order functions: functions that act on
or return other functions.</p>
<dl class="py function">
<dt class="sig">functools.pairwise(iterable)</dt>
<dd><p>Return successive overlapping pairs
taken from the input iterable.</p></dd>
</dl>
<pre>for a, b in pairwise(data):
    print(a, b)</pre>
<ul><li>One item,
wrapped.</li><li>Two</li></ul>
<table><tr><th>name</th><th>default</th></tr><tr><td>maxsize</td><td>128</td></tr></table>
<aside class="footnote"><p>A footnote that matters.</p></aside>
<aside class="sidebar"><p>Sidebar advert.</p></aside>
<![CDATA[ hidden ]]>
</section>
</div></div>
<div class="footer">&#169; Copyright 2001. Created using Sphinx.</div>
</body></html>"""


def test_html_becomes_blocks_with_kinds_sections_and_no_furniture():
    title, blocks = html_blocks.parse(PAGE)
    assert title == "functools — Library"
    got = [(b.kind, b.text) for b in blocks]
    assert got == [
        (HEADING, "functools"),
        (PARAGRAPH, "The functools module is for higher-order functions: functions that act on or return "
                    "other functions."),
        (SIGNATURE, "functools.pairwise(iterable)"),
        (PARAGRAPH, "Return successive overlapping pairs taken from the input iterable."),
        (CODE, "for a, b in pairwise(data):\n    print(a, b)"),
        (LIST_ITEM, "One item, wrapped."),
        (LIST_ITEM, "Two"),
        (TABLE_ROW, "name | default"),
        (TABLE_ROW, "maxsize | 128"),
        (NOTE, "A footnote that matters."),
    ]
    # A signature heads its description, and nothing after it.
    assert [b.section for b in blocks[1:]] == [("functools",)] * 2 + [("functools", "functools.pairwise")] + \
        [("functools",)] * 6


def test_the_stored_text_is_the_rendering_and_every_block_span_points_into_it():
    doc = parse(PAGE.encode(), "functools.html")
    for bad in ("html", "xml version", "CDATA", "hidden", "¶", "Navigation", "Copyright", "Sidebar", "var x"):
        assert bad not in doc.text, bad
    assert doc.title == "functools — Library"
    assert "    print(a, b)" in doc.text, "code keeps its indentation"
    for span in doc.content:
        assert doc.text[span.start:span.end].strip() == doc.text[span.start:span.end]
    _, blocks = html_blocks.parse(PAGE)
    text, spans = render(blocks)
    assert [text[s.start:s.end] for s in spans] == [b.text for b in blocks]


def test_markdown_becomes_the_same_kinds_of_blocks():
    source = ("# Guide\n\nSome *wrapped*\nprose with `code` and a [link](http://x.example).\n\n## Options\n\n"
              "- `level`: the minimum\n  level, default `info`.\n\n```js\nconst a = 1\n  indented()\n```\n\n"
              "| option | default |\n|---|---|\n| level | info |\n")
    title, blocks = markdown_blocks.parse(source)
    assert title == "Guide"
    assert [(b.kind, b.text, b.section) for b in blocks] == [
        (HEADING, "Guide", ()),
        (PARAGRAPH, "Some wrapped prose with code and a link.", ("Guide",)),
        (HEADING, "Options", ("Guide",)),
        (LIST_ITEM, "level: the minimum level, default info.", ("Guide", "Options")),
        (CODE, "const a = 1\n  indented()", ("Guide", "Options")),
        (TABLE_ROW, "option | default", ("Guide", "Options")),
        (TABLE_ROW, "level | info", ("Guide", "Options")),
    ]


def test_markup_nested_past_any_real_page_is_refused_at_once_and_shallower_parses():
    _, blocks = html_blocks.parse("<div>" * 1000 + "deep text" + "</div>" * 1000)
    assert [b.text for b in blocks] == ["deep text"]
    began = time.perf_counter()
    with pytest.raises(InvalidInput, match="levels deep"):
        parse(("<div>" * 2_000_000).encode(), "deep.html")
    assert time.perf_counter() - began < 10
