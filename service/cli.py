"""The `citeqa` command: build and inspect the index, search it, serve it."""

from __future__ import annotations

import logging
import sqlite3
import sys
from pathlib import Path
from typing import Annotated

import typer

from index.errors import CiteqaError
from service.config import Settings

app = typer.Typer(help="citeqa: answers from your documents, every statement cited.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
index_app = typer.Typer(help="Build and inspect the index.", no_args_is_help=True)
app.add_typer(index_app, name="index")

DataOpt = Annotated[Path | None, typer.Option("--data", help="Data folder (default: CITEQA_DATA_DIR, var/).")]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _settings(data: Path | None = None) -> Settings:
    settings = Settings()
    return settings.model_copy(update={"data_dir": data}) if data else settings


@index_app.command("build")
def index_build(
    docs: Annotated[Path | None, typer.Option("--docs", help="Folder of .txt, .md, .html files.")]
    = None,
    data: DataOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Re-embed every document (after a model change).")]
    = False,
) -> None:
    """Index a folder: new and changed files are embedded, removed ones dropped, the rest left alone."""
    from index.building import sync_folder

    settings = _settings(data)
    folder = docs or settings.docs_dir
    try:
        report = sync_folder(settings.data_dir, folder, settings.embedder(), settings.chunk_params(),
                             force=force)
    except CiteqaError as exc:
        _fail(exc.message)
    for skipped in report.skipped:
        typer.echo(f"warning: skipped {skipped.path}: {skipped.reason}", err=True)
    typer.echo(
        f"indexed {report.documents} documents, {report.chunks} chunks, {report.sentences} sentences "
        f"in {report.seconds:.1f} s (added {len(report.added)}, updated {len(report.updated)}, "
        f"removed {len(report.removed)}, unchanged {report.unchanged}; embedded {report.embedded} texts) "
        f"into {settings.data_dir}"
    )


@index_app.command("stats")
def index_stats(data: DataOpt = None) -> None:
    """What the index holds and which model built it."""
    from index import derived
    from index.snapshot import INDEX_DIR, store_at

    settings = _settings(data)
    store = store_at(settings.data_dir)
    if not store.exists():
        where = settings.data_dir
        _fail(f"no index in {where}; build it with: citeqa index build --data {where}")
    counts, meta = store.counts(), store.meta()
    fresh = derived.current(store, settings.data_dir / INDEX_DIR) is not None
    typer.echo(f"data:        {settings.data_dir}")
    typer.echo(f"model:       {meta.get('model', '-')} ({meta.get('dim', '-')} dimensions)")
    for key in ("documents", "chunks", "sentences"):
        typer.echo(f"{key + ':':<12} {counts[key]}")
    typer.echo(f"fingerprint: {store.fingerprint()}")
    typer.echo(f"index files: {'up to date' if fresh else 'stale (rebuilt on next start)'}")


@app.command()
def search(
    question: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("--k", min=1, max=50, help="Passages to show.")] = 5,
    data: DataOpt = None,
    mode: Annotated[str, typer.Option(help="hybrid, dense or bm25.")] = "hybrid",
) -> None:
    """Show the passages that best match QUESTION."""
    if not question.strip():
        _fail("QUESTION is empty; say what to look for")
    settings = _settings(data)
    try:
        passages = settings.engine().load().search(question, k=k, mode=mode)
    except CiteqaError as exc:
        _fail(exc.message)
    for p in passages:
        snippet = " ".join(p.text.split())
        typer.echo(f"{p.rank}. [{p.score:.4f}] {p.doc_id} {p.start}-{p.end}  {p.title}")
        typer.echo(f"   {snippet[:300]}{'…' if len(snippet) > 300 else ''}")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    k: Annotated[int | None, typer.Option("--k", min=1, max=50, help="Passages to retrieve.")] = None,
    data: DataOpt = None,
) -> None:
    """Answer QUESTION from the documents, with numbered citations."""
    from service.qa import ask as ask_question

    if not question.strip():
        _fail("QUESTION is empty; ask something")
    settings = _settings(data)
    reply = ask_question(settings.engine().load(), question.strip(), threshold=settings.abstain_threshold,
                         top_k=k or settings.top_k)
    typer.echo(reply.answer.answer)
    for c in reply.answer.citations:
        typer.echo(f"[{c.id}] {c.doc_id} {c.start}-{c.end}  {c.title}")


@app.command()
def calibrate(
    questions: Annotated[Path | None,
                         typer.Option("--set", help="Question set (default eval/questions.jsonl).")] = None,
    data: DataOpt = None,
    max_false_rate: Annotated[float, typer.Option(min=0.0, max=1.0,
                                                  help="Share of answerable questions allowed to abstain.")]
    = 0.02,
) -> None:
    """Suggest CITEQA_ABSTAIN_THRESHOLD from a question set with answerable and unanswerable questions."""
    from eval import dataset
    from eval.calibrate import calibrate as run

    settings = _settings(data)
    qs = dataset.load(questions or dataset.DEFAULT_SET)
    result = run(settings.engine().load(), qs, k=settings.top_k, max_false_rate=max_false_rate)
    typer.echo(f"answerable support:   {' '.join(f'{s:.2f}' for s in result.answerable)}")
    typer.echo(f"unanswerable support: {' '.join(f'{s:.2f}' for s in result.unanswerable)}")
    typer.echo(f"threshold {result.threshold:.3f}: {result.false_abstentions}/{len(result.answerable)} "
               f"answerable abstain, {result.caught}/{len(result.unanswerable)} unanswerable abstain")
    typer.echo(f"set it with: CITEQA_ABSTAIN_THRESHOLD={result.threshold:.3f}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    data: DataOpt = None,
) -> None:
    """Run the HTTP API."""
    import uvicorn

    from service.app import create_app

    settings = _settings(data)
    settings = settings.model_copy(update={k: v for k, v in (("host", host), ("port", port)) if v})
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        app()
    except CiteqaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    except (OSError, sqlite3.Error) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
