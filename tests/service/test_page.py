"""The chat page in a real browser (Debian's Chromium, driven by Playwright) against a real uvicorn process.

Every test also fails if the page logs a console error (see `open_page`).
"""

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.index.test_formats import pages_of
from tests.support.browser import PHONE
from tests.support.realfiles import bash_manuals
from tests.support.servers import serve_copy

QUESTION = "Why does Moscow want Pokrovsk?"
KEY = "page-test-key"

LIGHTHOUSE = """The Saltmarsh Lighthouse Log

Keeper's notes 📄 from the winter season, 🌊 copied by hand.

Marguerite Okonkwo kept the Saltmarsh lighthouse for eleven winters before it was automated in 1987.
The lamp burned paraffin until 1952, when the harbour board paid for an electric lantern.
"""

HOSTILE = """Night shift <img src=x onerror="window.__xss=1"> report

The night shift found a note reading <script>window.__xss=2</script> taped to the generator.
The generator room door was painted with <img src=x onerror="window.__xss=3"> in red letters.
"""

HOSTILE_HTML = """<html><body><h1>Boiler inspection</h1>
<p>The boiler inspector signed the form as &lt;img src=x onerror="window.__xss=4"&gt; on Tuesday.</p>
</body></html>"""


def api_ask(server: str, question: str, history: list | None = None) -> dict:
    response = httpx.post(f"{server}/v1/ask", json={"question": question, "history": history or []},
                          timeout=30)
    assert response.status_code == 200
    return response.json()


def ask(page, question: str):
    """Types the question, sends it with Enter, and returns the finished reply and the stream response."""
    page.locator("#question").fill(question)
    with page.expect_response("**/v1/ask/stream") as streamed:
        page.locator("#question").press("Enter")
    reply = page.locator(".turn").last.locator(".reply")
    expect(reply).to_have_attribute("aria-busy", "false")
    return reply, streamed.value


def one_line(text: str) -> str:
    return " ".join(text.split())


def open_citation(page, chip, citation: dict) -> None:
    """Clicks a chip (or a source) and checks the side panel highlights exactly the quoted words."""
    chip.click()
    quote = citation.get("quote", citation.get("text"))
    # a quote across blocks (a heading and its paragraph) is marked in each: together, the quote exactly
    page.wait_for_function("""q => [...document.querySelectorAll('#source-text mark')]
                                  .map((m) => m.textContent).join('') === q""", arg=quote)
    expect(page.locator("#source-text mark").first).to_be_in_viewport()
    expect(page.locator("#side-title")).to_have_text(citation["title"])


@pytest.fixture(scope="module")
def writable(seeds_data, tmp_path_factory):
    server = serve_copy(seeds_data, tmp_path_factory.mktemp("page"))
    yield server.url
    server.stop()


def test_an_answer_streams_in_with_chips_that_show_the_quote_and_open_it_highlighted(
        server, open_page, shots):
    page = open_page(server).page
    expected = api_ask(server, QUESTION)
    reply, streamed = ask(page, QUESTION)
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert one_line(reply.locator(".answer").text_content()) == one_line(
        expected["answer"].replace("[", "").replace("]", ""))
    chips = reply.locator(".chip")
    citations = expected["citations"]
    expect(chips).to_have_count(len(citations))
    # Sources are grouped by document: each title once, its quotes under it with the words around them
    expect(reply.locator(".sources .source-link")).to_have_count(len(citations))
    titles = list(dict.fromkeys(c["title"] for c in citations))
    expect(reply.locator(".source-doc > .source-title")).to_have_text(titles)

    chips.first.hover()
    tip = page.locator("#tip")
    expect(tip).to_be_visible()
    expect(tip.locator(".tip-title")).to_have_text(citations[0]["title"])
    expect(tip.locator(".tip-quote")).to_have_text(f"“{one_line(citations[0]['quote'])}”")

    for chip, citation in reversed(list(zip(chips.all(), citations, strict=True))):
        open_citation(page, chip, citation)
    page.mouse.move(0, 0)
    page.screenshot(path=shots / "chat-desktop.png")
    # The sources list under the answer opens the same spans.
    open_citation(page, reply.locator(".sources .source-link").last, citations[-1])


def test_the_keyboard_alone_asks_opens_a_citation_and_closes_it(server, open_page):
    page = open_page(server).page
    question = page.locator("#question")
    expect(question).to_be_focused()
    page.keyboard.type("Why does Moscow")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("want Pokrovsk?")
    expect(question).to_have_value("Why does Moscow\nwant Pokrovsk?")
    expect(page.locator(".turn")).to_have_count(0)
    page.keyboard.press("Enter")
    expect(page.locator(".reply")).to_have_attribute("aria-busy", "false")
    expect(question).to_have_value("")

    page.locator("body").focus()
    for _ in range(12):  # skip link, the two header buttons, then the first chip
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('chip')"):
            break
    chip = page.locator(".chip").first
    expect(chip).to_be_focused()
    expect(page.locator("#tip")).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("#source-text mark")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#side")).to_be_hidden()
    expect(chip).to_be_focused()


def test_a_follow_up_is_sent_with_the_history_and_answered_in_context(server, open_page):
    page = open_page(server).page
    first = "Who is Emil Kastehelmi?"
    reply, _ = ask(page, first)
    follow_up = "How does he see the outlook for Ukraine?"
    reply, streamed = ask(page, follow_up)
    history = streamed.request.post_data_json["history"]
    assert [t["role"] for t in history] == ["user", "assistant"] and history[0]["content"] == first
    expected = api_ask(server, follow_up, history)
    assert not expected["abstained"] and expected["query"] != follow_up  # rewritten with the history
    expect(reply).not_to_have_class("reply abstained")
    expect(reply.locator(".searched")).to_have_text(f"Searched for: “{expected['query']}”")
    expect(page.locator(".turn").first.locator(".searched")).to_have_count(0)  # a first question is not
    expect(reply.locator(".chip")).to_have_count(len(expected["citations"]))
    open_citation(page, reply.locator(".chip").first, expected["citations"][0])

    page.locator("#new-chat").click()
    expect(page.locator(".turn")).to_have_count(0)
    _, streamed = ask(page, follow_up)
    assert streamed.request.post_data_json["history"] == [], "a new conversation starts without history"


def test_an_abstention_looks_different_and_still_offers_the_closest_passages(server, open_page):
    page = open_page(server).page
    question = "What is the boiling point of mercury?"
    expected = api_ask(server, question)
    assert expected["abstained"]
    reply, _ = ask(page, question)
    expect(reply).to_have_class("reply abstained")
    expect(reply.locator(".label")).to_have_text("Not in the documents")
    expect(reply.locator(".chip")).to_have_count(0)
    closest = reply.locator(".closest li")
    expect(closest).to_have_count(min(3, len(expected["passages"])))
    open_citation(page, closest.first.locator("button"), expected["passages"][0])


def test_a_document_uploaded_in_the_panel_is_cited_then_deleted(writable, open_page, tmp_path):
    tab = open_page(writable)
    page = tab.page
    page.locator("#open-docs").click()
    page.locator("#upload-button").click()
    expect(page.locator("#docs-error")).to_have_text("Choose a .txt, .md, .html, .pdf or .docx file first.")

    tab.allow(415)
    odt = tmp_path / "notes.odt"
    odt.write_bytes(b"PK\x03\x04 not a text format")
    page.locator("#file").set_input_files(odt)
    page.locator("#upload-button").click()
    expect(page.locator("#docs-error")).to_contain_text("That file cannot be added: notes.odt: unsupported")

    tab.allow(422)
    pdf = tmp_path / "broken.pdf"
    pdf.write_bytes(b"%PDF-1.4 cut short")
    page.locator("#file").set_input_files(pdf)
    page.locator("#upload-button").click()
    expect(page.locator("#docs-error")).to_have_text(re.compile(
        r"^That file cannot be added: broken\.pdf: not a readable PDF .*save or print it to PDF again$"))

    path = tmp_path / "saltmarsh.md"
    path.write_text(LIGHTHOUSE, encoding="utf-8")
    page.locator("#file").set_input_files(path)
    page.locator("#upload-button").click()
    expect(page.locator("#docs-status")).to_contain_text("Added “The Saltmarsh Lighthouse Log”")
    chunks = httpx.get(f"{writable}/v1/documents/saltmarsh").json()["chunks"]
    expect(page.locator("#docs-status")).to_contain_text(f"({chunks} passage{'' if chunks == 1 else 's'})")
    item = page.locator(".doc", has_text="The Saltmarsh Lighthouse Log")
    expect(item).to_have_count(1)

    # The same file name again: the page asks before it replaces the document
    path.write_text(LIGHTHOUSE.replace("eleven winters", "twelve winters"), encoding="utf-8")
    page.locator("#file").set_input_files(path)
    page.locator("#upload-button").click()
    expect(page.locator("#docs-status")).to_contain_text("is already in the collection")
    expect(page.locator("#upload-button")).to_have_text("Replace it")
    assert "eleven winters" in httpx.get(f"{writable}/v1/documents/saltmarsh").json()["text"]
    page.locator("#upload-button").click()
    expect(page.locator("#docs-status")).to_contain_text("Added “The Saltmarsh Lighthouse Log”")
    expect(page.locator("#upload-button")).to_have_text("Upload")
    assert "twelve winters" in httpx.get(f"{writable}/v1/documents/saltmarsh").json()["text"]
    path.write_text(LIGHTHOUSE, encoding="utf-8")
    page.locator("#file").set_input_files(path)
    page.locator("#upload-button").click()
    page.locator("#upload-button").click()
    expect(page.locator("#docs-status")).to_contain_text("Added “The Saltmarsh Lighthouse Log”")

    question = "Who kept the Saltmarsh lighthouse?"
    expected = api_ask(writable, question)
    cited = [c for c in expected["citations"] if c["doc_id"] == "saltmarsh"]
    assert cited and "Marguerite Okonkwo" in cited[0]["quote"]
    page.locator("#close-side").click()
    reply, _ = ask(page, question)
    chip = reply.locator(f".chip[data-cite='{cited[0]['id']}']")
    open_citation(page, chip, cited[0])  # after two emoji: offsets count code points, not UTF-16 units

    page.locator("#open-docs").click()
    item.locator("button.danger").click()
    expect(item.locator("button.danger")).to_have_text("Delete for good?")
    item.locator("button.danger").click()
    expect(page.locator("#docs-status")).to_have_text("Deleted “The Saltmarsh Lighthouse Log”.")
    expect(item).to_have_count(0)
    assert httpx.get(f"{writable}/v1/documents/saltmarsh").status_code == 404
    page.locator("#close-side").click()
    reply, _ = ask(page, question)
    assert not [c for c in api_ask(writable, question)["citations"] if c["doc_id"] == "saltmarsh"]
    expect(reply).to_have_class("reply abstained")


def test_markup_in_documents_and_questions_is_shown_as_text_and_runs_nothing(writable, open_page, tmp_path):
    page = open_page(writable).page
    page.locator("#open-docs").click()
    for name, text in (("nightshift.txt", HOSTILE), ("boiler.html", HOSTILE_HTML)):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        page.locator("#file").set_input_files(path)
        page.locator("#upload-button").click()
        expect(page.locator("#docs-status")).to_contain_text("Added")
    expect(page.locator(".doc-title", has_text='Night shift <img src=x onerror="window.__xss=1"> report')
           ).to_have_count(1)
    page.locator("#close-side").click()

    for question in ("What note did the night shift find taped to the generator?",
                     "How did the boiler inspector sign the form?"):
        expected = api_ask(writable, question)
        cited = [c for c in expected["citations"] if "<" in c["quote"]]
        assert cited, expected["answer"]
        reply, _ = ask(page, question)
        expect(reply.locator(".answer")).to_contain_text(one_line(cited[0]["quote"]))
        chip = reply.locator(f".chip[data-cite='{cited[0]['id']}']")
        chip.hover()
        expect(page.locator("#tip .tip-quote")).to_contain_text("<")
        open_citation(page, chip, cited[0])

    typed = "<img src=x onerror=\"window.__xss=5\"> <b>bold?</b>"
    ask(page, typed)
    expect(page.locator(".question").last).to_have_text(typed)
    assert page.evaluate("window.__xss") is None, "nothing from a document or a question ran"
    assert page.locator("#turns img, #side img, #tip img, #turns b").count() == 0


def test_a_phone_sized_screen_keeps_everything_usable(server, open_page, shots):
    page = open_page(server, viewport=PHONE).page
    expected = api_ask(server, QUESTION)
    reply, _ = ask(page, QUESTION)
    no_sideways_scroll = "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    assert page.evaluate(no_sideways_scroll)
    for locator in (page.locator("#question"), page.locator("#send"), page.locator("#open-docs"),
                    page.locator("#new-chat"), page.locator("#open-convs")):
        box = locator.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    page.screenshot(path=shots / "chat-phone.png")

    chip = reply.locator(".chip").first
    chip.scroll_into_view_if_needed()
    open_citation(page, chip, expected["citations"][0])
    side = page.locator("#side").bounding_box()
    assert (side["width"], side["height"]) == (PHONE["width"], PHONE["height"]), "the source fills the screen"
    expect(page.locator("#close-side")).to_be_in_viewport()
    page.screenshot(path=shots / "chat-phone-source.png")
    page.locator("#close-side").click()
    expect(page.locator("#side")).to_be_hidden()

    page.locator("#open-docs").click()
    for locator in (page.locator("#file"), page.locator("#upload-button"), page.locator(".doc").first):
        expect(locator).to_be_in_viewport()
    assert page.evaluate(no_sideways_scroll)


def test_the_page_asks_for_the_api_key_before_changing_documents(seeds_data, tmp_path, open_page):
    server = serve_copy(seeds_data, tmp_path, CITEQA_API_KEY=KEY)
    try:
        tab = open_page(server.url)
        page = tab.page
        page.locator("#open-docs").click()
        path = tmp_path / "saltmarsh.md"
        path.write_text(LIGHTHOUSE, encoding="utf-8")
        page.locator("#file").set_input_files(path)
        page.locator("#upload-button").click()
        expect(page.locator("#key-label")).to_have_text("This server needs an API key to change documents.")

        tab.allow(401)
        page.locator("#api-key").fill("wrong-key")
        page.locator("#api-key").press("Enter")
        expect(page.locator("#docs-error")).to_have_text(
            "The server did not accept the API key. Enter the key it was started with.")
        expect(page.locator("#key-form")).to_be_visible()
        assert httpx.get(f"{server.url}/v1/documents/saltmarsh").status_code == 404

        page.locator("#api-key").fill(KEY)
        page.locator("#api-key").press("Enter")
        expect(page.locator("#docs-status")).to_contain_text("Added “The Saltmarsh Lighthouse Log”")
        expect(page.locator("#forget-key")).to_be_visible()
        assert httpx.get(f"{server.url}/v1/documents/saltmarsh").status_code == 200
    finally:
        server.stop()


def test_a_slow_answer_says_how_long_the_user_waited_and_a_question_typed_meanwhile_is_kept(server,
                                                                                           open_page):
    tab = open_page(server, PHONE)
    page = tab.page
    ask(page, QUESTION)  # a turn above, so the next one has to be scrolled to

    page.evaluate("""() => {  // a slow network: the question reaches the server 2 s late
      const send = window.fetch;
      window.fetch = async (url, options) => {
        if (String(url).includes("/v1/ask/stream")) await new Promise((done) => setTimeout(done, 2000));
        return send(url, options);
      };
    }""")
    page.locator("#question").fill("Who is Emil Kastehelmi?")
    page.locator("#question").press("Enter")
    page.locator("#question").fill("What did Kyiv admit on Monday?")
    page.locator("#question").press("Enter")
    expect(page.locator("#ask-error")).to_have_text(
        "An answer is still coming; send this question when it is done.")
    reply = page.locator(".turn").last.locator(".reply")
    expect(reply).to_have_attribute("aria-busy", "false", timeout=30_000)
    expect(page.locator("#question")).to_have_value("What did Kyiv admit on Monday?")  # not lost
    said = reply.locator(".meta").text_content()
    waited = float(re.search(r"Answered in ([\d.]+) s", said).group(1))
    assert waited >= 2, said  # the server's own time is a few hundredths of a second
    assert re.search(r"from \d+ passages?\.", said) and "1 passages" not in said
    # the new turn is read from its beginning, not hidden under the question box
    turn = page.locator(".turn").last
    expect(turn.locator(".question")).to_be_in_viewport()
    begins, box_top = turn.locator(".answer").bounding_box()["y"], page.locator("#ask").bounding_box()["y"]
    assert begins < box_top, (begins, box_top)


def _luminance(rgb: str) -> float:
    r, g, b = (int(x) / 255 for x in re.findall(r"\d+", rgb)[:3])
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_dark_mode_follows_the_system_and_keeps_text_readable(server, open_page):
    tab = open_page(server)
    page = tab.page
    page.emulate_media(color_scheme="dark")
    ask(page, QUESTION)

    def css(selector: str, prop: str) -> str:
        return page.evaluate("([sel, prop]) => getComputedStyle(document.querySelector(sel))[prop]",
                             [selector, prop])

    assert _luminance(css("body", "backgroundColor")) < 0.05  # dark, not the light page
    assert _contrast(css("body", "backgroundColor"), css("body", "color")) >= 7
    assert _contrast(css("#send", "backgroundColor"), css("#send", "color")) >= 4.5
    assert _contrast(css(".reply", "backgroundColor"), css(".answer", "color")) >= 7
    page.emulate_media(color_scheme="light")
    assert _luminance(css("body", "backgroundColor")) > 0.8


def test_on_a_phone_chips_are_finger_sized_and_screen_readers_hear_the_answer(server, open_page):
    tab = open_page(server, PHONE)
    page = tab.page
    reply, _ = ask(page, QUESTION)
    chips = reply.locator(".chip")
    assert chips.count() >= 1
    for i in range(chips.count()):
        box = chips.nth(i).bounding_box()
        assert box["width"] >= 32 and box["height"] >= 32, box
    announce = page.locator("#announce")
    expect(announce).to_have_attribute("aria-live", "polite")
    expect(announce).to_contain_text("Answer ready, with")
    # what a reader sees of a source: the quote highlighted, no hashed id nor offsets
    reply.locator(".source-link").first.click()
    meta = page.locator("#source-meta")
    expect(meta).to_contain_text("The quoted words are highlighted")
    assert not re.search(r"[0-9a-f]{16}|characters \d+", meta.inner_text())


def test_a_failed_answer_offers_a_retry_that_asks_again(server, open_page):
    tab = open_page(server)
    page = tab.page
    page.evaluate("""() => {  // the network drops the first question, then comes back
      const send = window.fetch;
      let dropped = false;
      window.fetch = (url, options) => {
        if (!dropped && String(url).includes("/v1/ask/stream")) {
          dropped = true;
          return Promise.reject(new TypeError("network down"));
        }
        return send(url, options);
      };
    }""")
    page.locator("#question").fill(QUESTION)
    page.locator("#question").press("Enter")
    failed = page.locator(".turn").last.locator(".reply")
    expect(failed).to_have_class(re.compile("failed"))
    expect(failed.locator(".meta")).to_have_text("The server could not be reached. Is citeqa still running?")
    with page.expect_response("**/v1/ask/stream"):
        failed.locator("button.retry").click()
    expect(page.locator(".turn")).to_have_count(1)  # the failed turn gave way to the answer
    answered = page.locator(".turn").last.locator(".reply")
    expect(answered).to_have_attribute("aria-busy", "false")
    expect(answered.locator(".sources .source")).not_to_have_count(0)


def test_conversations_survive_a_reload_and_a_new_one_keeps_the_old_in_the_list(server, open_page):
    page = open_page(server).page
    first = "Who is Emil Kastehelmi?"
    expected = api_ask(server, first)
    ask(page, first)
    page.reload()
    turn = page.locator(".turn")
    expect(turn).to_have_count(1)  # drawn again from the browser's storage
    expect(turn.locator(".question")).to_have_text(first)
    expect(turn.locator(".chip")).to_have_count(len(expected["citations"]))
    open_citation(page, turn.locator(".chip").first, expected["citations"][0])
    page.keyboard.press("Escape")
    # a follow-up after the reload still carries the conversation
    _, streamed = ask(page, "How does he see the outlook for Ukraine?")
    assert streamed.request.post_data_json["history"][0] == {"role": "user", "content": first}

    page.locator("#new-chat").click()
    expect(page.locator(".turn")).to_have_count(0)
    expect(page.locator("#announce")).to_have_text(
        "New conversation. The previous one is kept under Conversations.")
    ask(page, QUESTION)
    page.locator("#open-convs").click()
    listed = page.locator("#conv-list .conv-open")
    expect(listed).to_have_text([QUESTION, first])  # the newest first
    expect(listed.first).to_have_attribute("aria-current", "true")
    expect(page.locator("#conv-list .doc-meta").last).to_contain_text("2 questions")
    listed.last.click()
    expect(page.locator(".turn .question")).to_have_text([first, "How does he see the outlook for Ukraine?"])
    page.reload()  # the one last opened is the one shown after a reload
    expect(page.locator(".turn .question").first).to_have_text(first)

    page.locator("#open-convs").click()
    remove = page.locator("#conv-list .danger").last
    remove.click()
    expect(remove).to_have_text("Delete for good?")
    remove.click()
    expect(page.locator("#conv-list .conv-open")).to_have_text([QUESTION])
    expect(page.locator(".turn")).to_have_count(0)  # the one on screen was the one deleted
    page.reload()
    page.locator("#open-convs").click()
    expect(page.locator("#conv-list .conv-open")).to_have_text([QUESTION])


def test_the_copy_button_copies_the_answer_with_its_sources(server, open_page):
    page = open_page(server).page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    expected = api_ask(server, QUESTION)
    reply, _ = ask(page, QUESTION)
    reply.locator("button.copy").click()
    expect(reply.locator("button.copy")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    answer, sources = copied.split("\n\nSources:\n")
    assert answer == expected["answer"]
    assert sources.splitlines() == [f"[{c['id']}] {c['title']}: “{one_line(c['quote'])}”"
                                    for c in expected["citations"]]


def test_the_empty_page_offers_example_questions_from_the_collection(server, open_page):
    page = open_page(server).page
    titles = [d["title"] for d in httpx.get(f"{server}/v1/documents").json()["documents"]]
    examples = page.locator("#example-list button")
    expect(examples).not_to_have_count(0)
    for text in examples.all_inner_texts():
        assert any(title in text for title in titles), text  # drawn from this collection, not written in
    chosen = examples.first.inner_text()
    with page.expect_response("**/v1/ask/stream"):
        examples.first.click()
    expect(page.locator(".turn .question")).to_have_text([chosen])
    reply = page.locator(".turn .reply")
    expect(reply).to_have_attribute("aria-busy", "false")
    expect(reply).not_to_have_class(re.compile("abstained"))
    expect(page.locator("#examples")).to_be_hidden()


def test_the_scope_limits_the_documents_searched_and_the_passages_read(server, open_page):
    page = open_page(server).page
    documents = httpx.get(f"{server}/v1/documents").json()["documents"]
    chosen = next(d for d in documents if "Pokrovsk" in d["title"])
    page.locator("#scope summary").click()
    page.locator("#scope-all").uncheck()
    for box in page.locator("#scope-docs input").all():
        box.uncheck()
    page.locator("#question").fill(QUESTION)
    page.locator("#question").press("Enter")
    expect(page.locator("#ask-error")).to_have_text(
        "Choose at least one document to search, or All documents.")
    expect(page.locator(".turn")).to_have_count(0)
    expect(page.locator("#question")).to_have_value(QUESTION)

    page.locator(f"#scope-docs input[value='{chosen['doc_id']}']").check()
    page.locator("#top-k").fill("3")
    expect(page.locator("#scope-summary")).to_have_text(f"Searching “{chosen['title']}” · 3 passages")
    reply, streamed = ask(page, QUESTION)
    sent = streamed.request.post_data_json
    assert sent["doc_ids"] == [chosen["doc_id"]] and sent["top_k"] == 3
    expect(page.locator(".turn .scoped")).to_have_text(f"In “{chosen['title']}”")
    toggle = reply.locator(".passages-toggle")
    expect(toggle).to_have_text("3 passages")
    expect(reply.locator(".passages")).to_be_hidden()
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    passages = reply.locator(".passages .source-title")
    expect(passages).to_have_text([chosen["title"]] * 3)
    expected = api_ask_scoped(server, QUESTION, [chosen["doc_id"]], 3)
    open_citation(page, reply.locator(".passages .source-link").first, expected["passages"][0])
    for title in reply.locator(".source-doc > .source-title").all_inner_texts():
        assert title == chosen["title"]


def api_ask_scoped(server: str, question: str, doc_ids: list[str], top_k: int) -> dict:
    response = httpx.post(f"{server}/v1/ask", json={"question": question, "doc_ids": doc_ids, "top_k": top_k},
                          timeout=30)
    assert response.status_code == 200
    return response.json()


def test_a_source_shows_the_words_around_its_quote_and_a_listed_document_opens_to_read(server, open_page):
    page = open_page(server).page
    expected = api_ask(server, QUESTION)
    reply, _ = ask(page, QUESTION)
    first = expected["citations"][0]
    text = httpx.get(f"{server}/v1/documents/{first['doc_id']}").json()["text"]
    source = reply.locator(".source-link").first
    expect(source.locator(".quoted")).to_have_text(one_line(first["quote"]))
    before, after = (one_line(t).strip("…") for t in source.locator(".context").all_inner_texts())
    assert before or after, "a quote is shown with words of its document around it"
    flat = one_line(text)
    at = flat.index(one_line(first["quote"]))
    assert flat[:at].rstrip().endswith(before.strip()) and flat[at + len(one_line(first["quote"])):].lstrip(
        ).startswith(after.strip())

    page.locator("#open-docs").click()
    page.locator(".doc-list .doc-title", has_text=first["title"]).click()
    expect(page.locator("#side-title")).to_have_text(first["title"])
    expect(page.locator("#source-meta")).not_to_have_text("Loading the document…")  # fetched and drawn
    assert page.locator("#source-text").text_content() == text
    expect(page.locator("#source-text mark")).to_have_count(0)


FERRY = """# Tidewater Ferry Manual

The tidewater ferry runs between Harlow Quay and the Mossbank slipway every forty minutes.

## Starting the engine

Before the first crossing the engineer primes the fuel pump and starts the engine with the ferryctl tool:

```sh
ferryctl prime --pump 2
ferryctl start --engine main --warmup 90
```

## Safety checks

- Count the life jackets: there must be sixty-four aboard.
- Test the foghorn before leaving Harlow Quay.
"""


def test_a_markdown_document_and_its_quoted_code_show_their_structure(writable, open_page):
    created = httpx.post(f"{writable}/v1/documents",
                         files={"file": ("ferry.md", FERRY.encode(), "text/markdown")})
    assert created.status_code == 201
    page = open_page(writable).page
    question = "Which ferryctl commands start the ferry's engine?"
    expected = api_ask(writable, question)
    code = [c for c in expected["citations"] if c.get("kind") == "code"]
    assert code and "\n" in code[0]["quote"], expected["citations"]
    reply, _ = ask(page, question)
    # the quoted code keeps its lines in the answer, in a code block, not run into one sentence
    block = reply.locator(".answer pre code")
    expect(block).to_have_count(len(code))
    assert block.first.text_content() == code[0]["quote"]

    open_citation(page, reply.locator(f".chip[data-cite='{code[0]['id']}']"), code[0])
    view = page.locator("#source-text")
    expect(view.locator("h3")).to_have_text(
        ["Tidewater Ferry Manual", "Starting the engine", "Safety checks"])
    expect(view.locator("pre")).to_have_text(
        ["ferryctl prime --pump 2\nferryctl start --engine main --warmup 90"])
    expect(view.locator(".block-list_item")).to_have_count(2)
    assert view.text_content() == httpx.get(f"{writable}/v1/documents/ferry").json()["text"]
    httpx.delete(f"{writable}/v1/documents/ferry")


def test_a_pdf_citation_names_its_page_marks_the_pages_and_opens_the_original_there(writable, open_page,
                                                                                   shots):
    pdf = pages_of((bash_manuals() / "bashref.pdf").read_bytes(), list(range(10, 16)))
    created = httpx.post(f"{writable}/v1/documents",
                         files={"file": ("shellpdf.pdf", pdf, "application/pdf")}, timeout=60)
    assert created.status_code == 201
    try:
        page = open_page(writable).page
        question = "What is a pipeline?"
        expected = api_ask(writable, question)
        cited = [c for c in expected["citations"] if c["doc_id"] == "shellpdf" and c["page"] > 1]
        assert cited, expected["citations"]
        reply, _ = ask(page, question)
        source = reply.locator(".source-link", has=page.locator(f".source-n:text-is('[{cited[0]['id']}]')"))
        expect(source.locator(".source-page")).to_have_text(f"page {cited[0]['page']}")
        open_citation(page, source, cited[0])
        pages = httpx.get(f"{writable}/v1/documents/shellpdf").json()["pages"]
        expect(page.locator("#source-meta")).to_contain_text(
            f"The quoted words are highlighted, on page {cited[0]['page']} of {len(pages)}.")
        marks = page.locator("#source-text .page-mark")
        expect(marks).to_have_count(len(set(pages)))
        # the quote sits after its page's mark and before the next one's
        between = page.evaluate("""(n) => {
          const mark = document.querySelector('#source-text mark');
          const at = (p) => document.querySelector(`#source-text .page-mark[data-page="${p}"]`);
          const after = (a, b) => a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING;
          return Boolean(after(at(n), mark)) && (!at(n + 1) || Boolean(after(mark, at(n + 1))));
        }""", cited[0]["page"])
        assert between
        page.mouse.move(0, 0)
        page.screenshot(path=shots / "chat-pdf-source.png")
        link = page.locator("#source-meta a.original")
        expect(link).to_have_text(f"Open the original PDF at page {cited[0]['page']}")
        with page.context.expect_page() as opened:
            link.click()
        viewer = opened.value
        expect(viewer.locator("#counter")).to_have_text(f"{cited[0]['page']} / 6")
    finally:
        httpx.delete(f"{writable}/v1/documents/shellpdf")


def test_a_long_collection_offers_a_filter_to_find_documents_to_search(writable, open_page):
    towns = ["Arlow", "Brisk", "Corran", "Dunmere", "Elsby", "Fallow", "Garth", "Hollin"]
    for town in towns:
        added = httpx.post(f"{writable}/v1/documents", timeout=60, json={
            "doc_id": f"town-{town.lower()}", "title": f"{town} parish notes",
            "text": f"{town} parish notes\n\nThe parish of {town} keeps a ledger of its wells.\n"})
        assert added.status_code == 201, added.text
    try:
        page = open_page(writable).page
        page.locator("#scope summary").click()
        page.locator("#scope-all").uncheck()
        search = page.locator("#scope-filter")
        expect(search).to_be_visible()  # 13 documents or more: more than a glance takes in
        search.fill("garth")
        expect(page.locator("#scope-docs label:visible")).to_have_text(["Garth parish notes"])
        search.fill("")
        listed = httpx.get(f"{writable}/v1/documents").json()["documents"]
        expect(page.locator("#scope-docs label:visible")).to_have_count(len(listed))
    finally:
        for town in towns:
            httpx.delete(f"{writable}/v1/documents/town-{town.lower()}")
