"""The `citeqa` command: build and inspect the index, search it, serve it."""

from __future__ import annotations

import logging
import sqlite3
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

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


@app.command("eval")
def evaluate(
    questions: Annotated[Path | None,
                         typer.Option("--set", help="Question set (default eval/questions.jsonl).")] = None,
    url: Annotated[str | None, typer.Option("--url", help="Evaluate a running server (e.g. "
                                            "http://127.0.0.1:8000) instead of this process.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for report.json, report.md and plots.")]
    = Path("var/eval"),
    k: Annotated[int, typer.Option("--k", min=1, max=50, help="Passages each answer reads.")] = 5,
    docs: Annotated[Path | None, typer.Option("--docs", help="Folder to index for an in-process run "
                                              "(default: CITEQA_DOCS_DIR, seeds/).")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Evaluate this existing index instead of "
                                              "building one from --docs.")] = None,
    baselines: Annotated[bool, typer.Option(help="Also score the BM25-only and LangChain baselines.")] = True,
    check: Annotated[Path | None, typer.Option("--check", help="Fail (exit 1) when a figure misses "
                                               "its floor in this TOML file (eval/thresholds.toml).")] = None,
) -> None:
    """Score answers on a question set: retrieval, facts, grounding, abstention, latency; with baselines."""
    import tempfile

    from eval import dataset, gate, report, runner, systems

    settings = _settings(data)
    qs = dataset.load(questions or dataset.DEFAULT_SET)
    thresholds = gate.load(check) if check else None
    with tempfile.TemporaryDirectory(prefix="citeqa-eval-") as tmp:
        if url:
            main_system, documents = systems.remote(url), _fetch_documents(url)
            engine = _scratch_engine(settings, Path(tmp), documents) if baselines else None
        else:
            if data:
                engine = settings.engine().load()
            else:
                from index.building import sync_folder

                scratch = settings.model_copy(update={"data_dir": Path(tmp)})
                sync_folder(scratch.data_dir, docs or settings.docs_dir, scratch.embedder(),
                            scratch.chunk_params())
                engine = scratch.engine().load()
            main_system = systems.local(engine, settings.abstain_threshold)
            documents = {d: (doc.title, doc.text) for d, doc in engine.snapshot().documents.items()}
        compared = [main_system]
        if baselines:
            compared += [systems.local(engine, settings.abstain_threshold, mode="bm25", name="bm25"),
                         systems.langchain(documents, engine.embedder)]
        result = runner.evaluate(compared, qs, k, source=str(questions or "eval/questions.jsonl"))
    written = report.write(result, out)
    typer.echo(report.table(result))
    typer.echo("wrote " + ", ".join(str(p) for p in written))
    if thresholds is not None:
        failures = gate.check(result["systems"]["citeqa"]["metrics"], thresholds)
        for line in failures:
            typer.echo(f"below the bar: {line}", err=True)
        if failures:
            _fail(f"{len(failures)} figure(s) miss the thresholds in {check}; see {out / 'report.md'}")
        typer.echo(f"every figure meets {check}")


def _fetch_documents(url: str) -> dict[str, tuple[str, str]]:
    """doc_id -> (title, text) of every document the server holds."""
    import httpx

    try:
        with httpx.Client(base_url=url.rstrip("/"), timeout=60) as client:
            listed = client.get("/v1/documents")
            listed.raise_for_status()
            out = {}
            for d in listed.json()["documents"]:
                doc = client.get(f"/v1/documents/{d['doc_id']}")
                doc.raise_for_status()
                out[d["doc_id"]] = (doc.json()["title"], doc.json()["text"])
            return out
    except httpx.HTTPError as exc:
        _fail(f"--url: cannot read documents from {url} ({exc}); is `citeqa serve` running there?")


def _scratch_engine(settings: Settings, folder: Path, documents: dict[str, tuple[str, str]]):
    """An index of `documents` in `folder`, for the baselines of a run against a server."""
    from index.building import put_documents
    from index.loading import make_document

    scratch = settings.model_copy(update={"data_dir": folder})
    docs = [make_document(text, doc_id, title) for doc_id, (title, text) in documents.items()]
    put_documents(folder, docs, scratch.embedder(), scratch.chunk_params(), progress=True)
    return scratch.engine().load()


@app.command()
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="A short run (under a minute): fewer requests, "
                                        "10k vectors only.")] = False,
    name: Annotated[str | None, typer.Option(help="Result name (default: quick or full).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for <name>.json.")] = Path("bench/results"),
    report: Annotated[Path, typer.Option("--report", help="Markdown report to rewrite (a .png plot is "
                                         "written beside it).")] = Path("docs/benchmarks.md"),
    docs: Annotated[Path, typer.Option("--docs", help="Collection to serve and ingest.")] = Path("seeds"),
) -> None:
    """Measure latency, throughput, ingestion and scale on this machine; write the figures and report."""
    if not docs.is_dir():
        _fail(f"--docs: {docs} is not a folder of documents")
    from bench import report as bench_report
    from bench.run import run

    try:
        result = run(quick=quick, name=name, docs=docs)
    except RuntimeError as exc:
        _fail(str(exc))
    saved = bench_report.write(result, out, report)
    for label, value, bound, met in bench_report.verdicts(result):
        typer.echo(f"{label:42} {value!s:>10}  {bound:>8}  {'ok' if met else 'MISSED'}")
    typer.echo(f"wrote {saved} and {report} in {result['seconds']:.0f} s")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    data: DataOpt = None,
    seed: Annotated[Path | None, typer.Option(help="Build the index from this folder first when the data "
                                              "folder has never held one (default: CITEQA_SEED_DIR).")]
    = None,
) -> None:
    """Run the HTTP API."""
    import uvicorn

    from service import logs
    from service.app import create_app

    settings = _settings(data)
    given = {"host": host, "port": port, "seed_dir": seed}
    settings = settings.model_copy(update={k: v for k, v in given.items() if v})
    import faiss

    # One FAISS thread: a single query is sub-millisecond, while an OpenMP team competing with the
    # request threads for two cores made flat searches take 8-24 ms (bench/scale.py).
    faiss.omp_set_num_threads(1)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, access_log=False,
                log_config=logs.config(settings.log_level, settings.log_format))


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
    except ValidationError as exc:  # a CITEQA_* variable (or .env line) with a value it cannot take
        problems = [f"CITEQA_{str(e['loc'][0]).upper() if e['loc'] else 'settings'}: {e['msg']}, "
                    f"not {e.get('input')!r}" for e in exc.errors()]
        typer.echo(f"error: {'; '.join(problems)}", err=True)
        sys.exit(1)
