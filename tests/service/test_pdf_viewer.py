"""The PDF viewer (/pdf.html, service/static/pdf.js with the vendored pdf.js) in a real browser (Debian's
Chromium, Playwright) against a real uvicorn process: it draws the cited page of the original file.

Every test also fails if the page logs a console error (see `open_page`), a refused script or worker
under the Content-Security-Policy included.
"""

import httpx
import pytest
from playwright.sync_api import expect

from tests.index.test_formats import pages_of
from tests.support.realfiles import bash_manuals
from tests.support.servers import serve_copy

PAGES = 6
SEED = "000_43ab17fb5869de75"


@pytest.fixture(scope="module")
def viewer(seeds_data, tmp_path_factory):
    """A server holding six pages of the Bash Reference Manual, uploaded as shell.pdf."""
    server = serve_copy(seeds_data, tmp_path_factory.mktemp("pdf-viewer"))
    pdf = pages_of((bash_manuals() / "bashref.pdf").read_bytes(), list(range(10, 10 + PAGES)))
    created = httpx.post(f"{server.url}/v1/documents", files={"file": ("shell.pdf", pdf)}, timeout=120)
    assert created.status_code == 201, created.text
    yield server.url
    server.stop()


def inked(page) -> float:
    """The share of the canvas's pixels that are not white: a drawn page of text has some."""
    return page.evaluate("""() => {
        const canvas = document.getElementById("page");
        const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
        let dark = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i] + data[i + 1] + data[i + 2] < 600) dark++;
        return dark / (data.length / 4);
    }""")


def test_the_viewer_draws_the_asked_page_and_pages_through_the_file(viewer, open_page):
    page = open_page(f"{viewer}/pdf.html?doc=shell&page=3").page
    canvas = page.locator("canvas#page[data-page='3']")
    expect(canvas).to_be_visible()
    expect(page.locator("#counter")).to_have_text(f"3 / {PAGES}")
    assert 0.005 < inked(page) < 0.5
    assert page.locator("#title").text_content() == "shell"  # the file names no title of its own
    page.locator("#next").click()
    expect(page.locator("canvas#page[data-page='4']")).to_be_visible()
    expect(page.locator("#counter")).to_have_text(f"4 / {PAGES}")
    assert page.url.endswith("page=4") and inked(page) > 0.005
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#counter")).to_have_text(f"3 / {PAGES}")
    page.goto(f"{viewer}/pdf.html?doc=shell&page=99")  # past the end: the last page
    expect(page.locator(f"canvas#page[data-page='{PAGES}']")).to_be_visible()
    expect(page.locator("#next")).to_be_disabled()
    page.goto(f"{viewer}/pdf.html?doc=shell")
    expect(page.locator("canvas#page[data-page='1']")).to_be_visible()
    expect(page.locator("#prev")).to_be_disabled()


def test_a_document_without_an_original_file_says_so(viewer, open_page):
    tab = open_page(f"{viewer}/pdf.html?doc={SEED}&page=2")
    tab.allow(404)
    expect(tab.page.locator("#error")).to_contain_text("no original file")
    expect(tab.page.locator("#page")).to_be_hidden()
    tab.page.goto(f"{viewer}/pdf.html")
    expect(tab.page.locator("#error")).to_contain_text("No document named")


def test_the_viewer_and_pdfjs_are_served_with_the_pages_content_security_policy(viewer):
    page = httpx.get(f"{viewer}/pdf.html")
    csp = page.headers["content-security-policy"]
    assert page.status_code == 200 and "script-src 'self'" in csp and "unsafe-eval" not in csp
    for name in ("pdf.js", "vendor/pdfjs/pdf.min.mjs", "vendor/pdfjs/pdf.worker.min.mjs"):
        script = httpx.get(f"{viewer}/static/{name}")
        assert script.status_code == 200 and script.headers["content-security-policy"] == csp
        assert script.headers["content-type"].startswith("text/javascript"), name
