"""What `citeqa ask` and `citeqa search` print: answers and passages wrapped to the terminal, each source
with the words it quotes, not offsets (`--json` gives those, as the API does). Both read the API's own
response shapes, so a local index and a server (`--url`) print alike."""

from __future__ import annotations

import json
import shutil
import textwrap
import urllib.error
import urllib.parse
import urllib.request

from citeqa.index.errors import CiteqaError

WIDTH = 100  # at most: longer lines are hard to read, even on a wide terminal
SNIPPET = 300  # characters of a passage a search shows


def width() -> int:
    return max(40, min(WIDTH, shutil.get_terminal_size((WIDTH, 24)).columns))


def _source(c: dict) -> str:
    title = c.get("title") or c["doc_id"]
    return title if title == c["doc_id"] else f"{title} ({c['doc_id']})"


def answer(body: dict, cols: int | None = None) -> str:
    """The answer, then its sources: one per citation, with the sentence it quotes."""
    cols = cols or width()
    out = [textwrap.fill(body["answer"], cols)]
    if body["citations"]:
        out.append("\nSources:")
        for c in body["citations"]:
            out.append(textwrap.fill(f"[{c['id']}] {_source(c)}", cols, subsequent_indent="    "))
            out.append(textwrap.fill(f"“{' '.join(c['quote'].split())}”", cols, initial_indent="    ",
                                     subsequent_indent="    "))
    return "\n".join(out)


def passages(results: list[dict], cols: int | None = None) -> str:
    cols = cols or width()
    out = []
    for p in results:
        snippet = " ".join(p["text"].split())
        snippet = snippet[:SNIPPET] + ("…" if len(snippet) > SNIPPET else "")
        out.append(textwrap.fill(f"{p['rank']}. {_source(p)}  (score {p['score']:.3f})", cols,
                                 subsequent_indent="   "))
        out.append(textwrap.fill(snippet, cols, initial_indent="   ", subsequent_indent="   "))
    return "\n".join(out)


def page_url(host: str, port: int) -> str:
    """Where a browser on this machine opens the page: a wildcard address is reached on loopback."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def as_json(body: dict) -> str:
    return json.dumps(body, ensure_ascii=False, indent=2)


class Unreachable(CiteqaError):
    """The server at --url did not answer, or answered with an error (its own message is kept)."""


def call(url: str, path: str, body: dict | None = None, query: dict | None = None, timeout: float = 60,
         key: str | None = None) -> dict:
    """GET (or POST `body` as JSON to) a running citeqa server; its error message when it refuses. `key`:
    the API key (CITEQA_API_KEY), for a server whose reads need it."""
    full = url.rstrip("/") + path + (f"?{urllib.parse.urlencode(query, doseq=True)}" if query else "")
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    request = urllib.request.Request(full, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            said = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            said = exc.reason
        raise Unreachable(f"{url} answered {exc.code}: {said}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f"could not reach {url} ({reason}); is citeqa serve running there?") from None
