"""The `citeqa` command: build and inspect the index, search it, serve it."""

from __future__ import annotations

import importlib
import logging
import os
import sqlite3
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from citeqa.index.errors import CiteqaError
from citeqa.service import terminal
from citeqa.service.config import Settings, problems

app = typer.Typer(help="citeqa: answers from your documents, every statement cited.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
index_app = typer.Typer(help="Build and inspect the index.", no_args_is_help=True)
app.add_typer(index_app, name="index")
cluster_app = typer.Typer(help="Past one machine: ingest and serve a sharded collection on a Ray cluster "
                          "(needs citeqa[cluster]; docs/cluster.md).", no_args_is_help=True)
app.add_typer(cluster_app, name="cluster")

DataOpt = Annotated[Path | None, typer.Option("--data", help="Data folder (default: CITEQA_DATA_DIR, var/).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of text.")]
UrlOpt = Annotated[str | None, typer.Option("--url", help="Ask a running server (e.g. http://127.0.0.1:8000) "
                                            "instead of loading the index here.")]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"citeqa {version('citeqa')}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """citeqa: answers from your documents, every statement cited."""


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _settings(**given: tuple[str, object]) -> Settings:
    """The settings from CITEQA_* and .env with the command line's values on top, validated alike:
    `given` maps a field to (its option, the value given, or None)."""
    try:
        return Settings(**{field: value for field, (_, value) in given.items() if value is not None})
    except ValidationError as exc:
        _fail(problems(exc, {field: option for field, (option, _) in given.items()}))


def _key(settings: Settings) -> str | None:
    """The API key to send with --url (CITEQA_API_KEY): a server that closes reads asks for it."""
    return settings.api_key.get_secret_value() if settings.api_key else None


EXTRAS = {"eval": ("matplotlib", "langchain_community", "langchain_huggingface", "httpx"),
          "cluster": ("ray",)}


def _require(extra: str) -> None:
    """Fail in one line, before any work, when an optional extra this command needs is not installed."""
    missing = []
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        _fail(f"this command needs citeqa[{extra}] ({', '.join(missing)} not installed): "
              f"pip install 'citeqa[{extra}]'")


@index_app.command("build")
def index_build(
    docs: Annotated[Path | None, typer.Option(
        "--docs", help="Folder of .txt, .md, .html, .pdf, .docx files.")] = None,
    data: DataOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Re-embed every document (after a model change).")]
    = False,
) -> None:
    """Index a folder: new and changed files are embedded, removed ones dropped, the rest left alone."""
    from citeqa.index.building import sync_folder

    settings = _settings(data_dir=("--data", data), docs_dir=("--docs", docs))
    folder = settings.docs_dir
    if folder is None:
        _fail("say which folder to index: citeqa index build --docs FOLDER (or set CITEQA_DOCS_DIR)")
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
def index_stats(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """What the index holds and which model built it."""
    from citeqa.index import derived
    from citeqa.index.snapshot import INDEX_DIR, store_at

    settings = _settings(data_dir=("--data", data))
    store = store_at(settings.data_dir)
    if not store.exists():
        where = settings.data_dir
        _fail(f"no index in {where}; build it with: citeqa index build --data {where}")
    counts, meta = store.counts(), store.meta()
    pending = derived.pending(store, settings.data_dir / INDEX_DIR)
    if as_json:
        typer.echo(terminal.as_json({"data": str(settings.data_dir), "model": meta.get("model"),
                                     "dim": int(meta["dim"]) if meta.get("dim") else None, **counts,
                                     "fingerprint": store.fingerprint(), "changed_since_merge": pending}))
        return
    typer.echo(f"data:        {settings.data_dir}")
    typer.echo(f"model:       {meta.get('model', '-')} ({meta.get('dim', '-')} dimensions)")
    for key in ("documents", "chunks", "sentences"):
        typer.echo(f"{key + ':':<12} {counts[key]}")
    typer.echo(f"fingerprint: {store.fingerprint()}")
    if pending is None:
        typer.echo("index files: missing (rebuilt on next start)")
    else:
        typer.echo(f"index files: {pending} documents changed since the last merge (read at start)")


@app.command()
def search(
    question: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int | None, typer.Option("--k", help="Passages to show (default: CITEQA_TOP_K).")] = None,
    data: DataOpt = None,
    mode: Annotated[str, typer.Option(help="hybrid, dense or bm25 (here only; a server searches hybrid).")]
    = "hybrid",
    url: UrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the passages that best match QUESTION."""
    if not question.strip():
        _fail("QUESTION is empty; say what to look for")
    settings = _settings(data_dir=("--data", data), top_k=("--k", k))
    try:
        if url:
            body = terminal.call(url, "/v1/search", query={"q": question.strip(), "k": settings.top_k},
                                 key=_key(settings))
        else:
            found = settings.engine().load().search(question, k=settings.top_k, mode=mode)
            body = {"query": question.strip(), "results": [p.as_dict() for p in found]}
    except CiteqaError as exc:
        _fail(exc.message)
    typer.echo(terminal.as_json(body) if as_json else terminal.passages(body["results"]))


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    k: Annotated[int | None, typer.Option("--k", help="Passages to retrieve (default: CITEQA_TOP_K).")]
    = None,
    data: DataOpt = None,
    url: UrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer QUESTION from the documents, with numbered citations."""
    from citeqa.answer.pipeline import ask as ask_question

    if not question.strip():
        _fail("QUESTION is empty; ask something")
    settings = _settings(data_dir=("--data", data), top_k=("--k", k))
    try:
        if url:
            body = terminal.call(url, "/v1/ask", {"question": question.strip(), "top_k": k},
                                 key=_key(settings))
        else:
            body = ask_question(settings.engine().load(), question.strip(),
                                threshold=settings.abstain_threshold, top_k=settings.top_k).as_dict()
    except CiteqaError as exc:
        _fail(exc.message)
    typer.echo(terminal.as_json(body) if as_json else terminal.answer(body))


@app.command()
def calibrate(
    name: Annotated[str, typer.Option("--set", help="An evaluation set of eval/sets/ (or the path of a "
                                      "questions .jsonl file).")] = "seeds",
    data: DataOpt = None,
    max_false_rate: Annotated[float, typer.Option(min=0.0, max=1.0,
                                                  help="Share of answerable questions allowed to abstain.")]
    = 0.02,
) -> None:
    """Suggest CITEQA_ABSTAIN_THRESHOLD from a question set with answerable and unanswerable questions."""
    from citeqa.eval import dataset, sets
    from citeqa.eval.calibrate import calibrate as run

    settings = _settings(data_dir=("--data", data))
    qs = dataset.load(sets.find(name).questions)
    result = run(settings.engine().load(), qs, k=settings.top_k, max_false_rate=max_false_rate)
    typer.echo(f"answerable support:   {' '.join(f'{s:.2f}' for s in result.answerable)}")
    typer.echo(f"unanswerable support: {' '.join(f'{s:.2f}' for s in result.unanswerable)}")
    typer.echo(f"threshold {result.threshold:.3f}: {result.false_abstentions}/{len(result.answerable)} "
               f"answerable abstain, {result.caught}/{len(result.unanswerable)} unanswerable abstain")
    typer.echo(f"set it with: CITEQA_ABSTAIN_THRESHOLD={result.threshold:.3f}")


@app.command("eval")
def evaluate(
    name: Annotated[str, typer.Option("--set", help="An evaluation set of eval/sets/ (or the path of a "
                                      "questions .jsonl file).")] = "seeds",
    every: Annotated[bool, typer.Option("--all", help="Every set of eval/sets/, one report each.")] = False,
    url: Annotated[str | None, typer.Option("--url", help="Evaluate a running server (e.g. "
                                            "http://127.0.0.1:8000) instead of this process.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for report.json, report.md and plots (one "
                                      "folder per set with --all).")] = Path("var/eval"),
    k: Annotated[int | None, typer.Option("--k", help="Passages each answer reads (default: "
                                          "CITEQA_TOP_K).")] = None,
    docs: Annotated[Path | None, typer.Option("--docs", help="Index this folder instead of the set's "
                                              "corpus.")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Evaluate this existing index instead of "
                                              "building one.")] = None,
    corpora: Annotated[Path, typer.Option("--corpora", help="Where the sets' recipes write their "
                                          "corpora.")] = Path("var/corpora"),
    baselines: Annotated[bool, typer.Option(help="Also score the BM25-only and LangChain baselines.")] = True,
    check: Annotated[bool, typer.Option("--check", help="Fail (exit 1) when a figure misses its set's "
                                        "thresholds.toml, or falls behind LangChain's default.")] = False,
    thresholds: Annotated[Path | None, typer.Option("--thresholds", help="Check against this TOML file "
                                                    "instead of the set's own.")] = None,
) -> None:
    """Score answers on evaluation sets: retrieval, facts, grounding, abstention, latency; with baselines."""
    _require("eval")
    from citeqa.eval import gate, report, sets

    if every and (url or docs or data or thresholds):
        _fail("--all: evaluates each set on its own corpus; drop --url, --docs, --data and --thresholds")
    settings = _settings(data_dir=("--data", data), top_k=("--k", k))
    chosen = [sets.find(n) for n in sets.names()] if every else [sets.find(name)]
    bars = {}  # read before any work: a bad thresholds file fails in a second, not after the run
    for s in chosen if check or thresholds else ():
        bar = thresholds or s.thresholds
        if bar is None:
            _fail(f"--check: the set {s.name!r} has no thresholds.toml; give one with --thresholds")
        bars[s.name] = (bar, gate.load(bar))
    failed = []
    for s in chosen:
        folder = out / s.name if every else out
        result = _evaluate_set(settings, s, url=url, docs=docs, use_data=data is not None, corpora=corpora,
                               baselines=baselines, index_dir=out / "index" / s.name)
        written = report.write(result, folder)
        typer.echo(f"\n{s.name}:\n{report.table(result)}")
        typer.echo("wrote " + ", ".join(str(p) for p in written))
        if s.name in bars:
            bar, floors = bars[s.name]
            metrics = result["systems"]["citeqa"]["metrics"]
            failures = gate.check(metrics, floors)
            if "langchain" in result["systems"]:
                failures += gate.versus(metrics, result["systems"]["langchain"]["metrics"], "langchain")
            for line in failures:
                typer.echo(f"below the bar ({s.name}): {line}", err=True)
            if failures:
                failed.append(f"{s.name} ({len(failures)}; see {folder / 'report.md'})")
            else:
                typer.echo(f"every figure of {s.name} meets {bar}")
    if failed:
        _fail(f"figures miss the bar on {', '.join(failed)}")


def _evaluate_set(settings: Settings, s, *, url: str | None, docs: Path | None, use_data: bool,
                  corpora: Path, baselines: bool, index_dir: Path) -> dict:
    """One set through citeqa (in this process, or the server at `url`) and the baselines."""
    import tempfile

    from citeqa.eval import dataset, runner, sets, systems

    questions = dataset.load(s.questions)
    with tempfile.TemporaryDirectory(prefix="citeqa-eval-") as tmp:
        if url:
            main_system, documents = systems.remote(url), _fetch_documents(url)
            engine = _scratch_engine(settings, Path(tmp), documents) if baselines else None
        else:
            if use_data:
                engine = settings.engine().load()
            else:
                from citeqa.index.building import sync_folder

                folder = docs or sets.corpus(s, corpora) or settings.docs_dir
                scratch = _scratch(settings, index_dir)  # kept: the next run embeds only what changed
                sync_folder(scratch.data_dir, folder, scratch.embedder(), scratch.chunk_params())
                engine = scratch.engine().load()
            main_system = systems.local(engine, settings.abstain_threshold)
            documents = {d: (doc.title, doc.text) for d, doc in engine.snapshot().documents.items()}
        compared = [main_system]
        if baselines:
            compared += [systems.local(engine, settings.abstain_threshold, mode="bm25", name="bm25"),
                         systems.langchain(documents, engine.embedder)]
        return runner.evaluate(compared, questions, settings.top_k, source=s.name)


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


def _scratch(settings: Settings, folder: Path) -> Settings:
    """The settings for an index of the evaluation's own in `folder`, keeping the model exported once
    where the settings keep it."""
    return settings.model_copy(update={"data_dir": folder,
                                       "model_cache": settings.model_cache or settings.data_dir / "models"})


def _scratch_engine(settings: Settings, folder: Path, documents: dict[str, tuple[str, str]]):
    """An index of `documents` in `folder`, for the baselines of a run against a server."""
    from citeqa.index.building import put_documents
    from citeqa.index.loading import make_document

    scratch = _scratch(settings, folder)
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
    large: Annotated[str | None, typer.Option(
        "--large", help="Sizes in chunks of the large served collections to build and measure, "
        "comma-separated (default: 10000 in a full run, none with --quick; 0 for none).")] = None,
) -> None:
    """Measure latency, throughput, ingestion and scale on this machine; write the figures and report."""
    if not docs.is_dir():
        _fail(f"--docs: {docs} is not a folder of documents")
    _require("eval")
    from citeqa.bench import report as bench_report
    from citeqa.bench.run import Setup, run
    from citeqa.eval import dataset

    settings = _settings()
    setup = Setup(settings.embedder(), settings.chunk_params(), settings.search_depth, settings.top_k,
                  settings.abstain_threshold, settings.batch_window_ms, settings.merge_rows,
                  settings.write_threads)
    questions = [q.question for q in dataset.load(dataset.DEFAULT_SET)]
    try:
        sizes = None if large is None else tuple(int(n) for n in large.split(",") if int(n) > 0)
    except ValueError:
        _fail(f"--large: comma-separated numbers of chunks, such as 10000,100000, not {large!r}")
    # The large collections recombine the sentences of every evaluation corpus built here (`citeqa eval`).
    sources = tuple(p for p in sorted(Path("var/corpora").glob("*")) if p.is_dir())
    try:
        result = run(setup, questions, docs, quick=quick, name=name, large=sizes, sources=sources)
    except RuntimeError as exc:
        _fail(str(exc))
    saved = bench_report.write(result, out, report)
    for label, value, bound, met in bench_report.verdicts(result):
        typer.echo(f"{label:42} {value!s:>10}  {bound:>8}  {'ok' if met else 'MISSED'}")
    typer.echo(f"wrote {saved} and {report} in {result['seconds']:.0f} s")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default: CITEQA_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: CITEQA_PORT).")] = None,
    data: DataOpt = None,
    seed: Annotated[Path | None, typer.Option(help="Build the index from this folder first when the data "
                                              "folder has never held one (default: CITEQA_SEED_DIR).")]
    = None,
    workers: Annotated[int | None, typer.Option(help="Server processes (default: CITEQA_WORKERS).")] = None,
) -> None:
    """Run the HTTP API."""
    import uvicorn

    from citeqa.service.app import create_app
    from citeqa.service.server import make_server, run_server, run_workers

    settings = _settings(data_dir=("--data", data), host=("--host", host), port=("--port", port),
                         seed_dir=("--seed", seed), workers=("--workers", workers))
    if settings.workers > 1:
        # The workers read their settings from the environment: the command line's options go there.
        for field, value in (("DATA_DIR", data), ("HOST", host), ("PORT", port), ("SEED_DIR", seed),
                             ("WORKERS", workers)):
            if value is not None:
                os.environ[f"CITEQA_{field}"] = str(value)
        run_workers(settings)
        return
    server: uvicorn.Server | None = None

    def stop() -> None:  # the index cannot load: exit rather than answer 503 forever
        server.should_exit = True

    app_ = create_app(settings, on_load_failure=stop)
    server = make_server(settings, app_)
    run_server(server)
    failure = app_.state.engine.failure
    if failure is not None:
        _fail(f"{failure.message}; fix it, then start citeqa serve again")
    if not server.started:  # uvicorn could not bind the address; it has said why
        raise typer.Exit(1)


AddressOpt = Annotated[str | None, typer.Option("--address", help="The Ray cluster (default: RAY_ADDRESS, "
                                                "else a cluster started on this machine with `ray start`).")]


@cluster_app.command("ingest")
def cluster_ingest(
    docs: Annotated[Path, typer.Option("--docs", help="Folder of .txt, .md, .html, .pdf, .docx files.")],
    out: Annotated[Path, typer.Option("--out", help="New folder for the sharded collection, on storage "
                                      "every node reaches.")],
    shards: Annotated[int, typer.Option("--shards", help="How many shards (citeqa indexes) to make.")],
    address: AddressOpt = None,
    actors: Annotated[int | None, typer.Option("--embed-actors", help="Embedding actors (default: one per "
                                               "CPU, or per GPU when the cluster has GPUs).")] = None,
) -> None:
    """Parse, cut and embed a folder on a Ray cluster (Ray Data) into SHARDS citeqa indexes."""
    _require("cluster")
    from citeqa.cluster.data import build_on_ray
    from citeqa.cluster.ingest import check_out
    from citeqa.cluster.serve import connect, shard_settings

    settings = _settings()
    try:
        check_out(out, shards)
        connect(address)
        report = build_on_ray(docs, out, shards, shard_settings(settings), actors)
    except CiteqaError as exc:
        _fail(exc.message)
    except ConnectionError as exc:
        _fail(f"no Ray cluster at {address or 'RAY_ADDRESS'}: {exc}; start one with `ray start --head`")
    for skipped in report.skipped:
        typer.echo(f"warning: skipped {skipped.path}: {skipped.reason}", err=True)
    steps = ", ".join(f"{step} {s:.1f} s" for step, s in report.seconds.items())
    typer.echo(f"ingested {report.documents} documents, {report.chunks} chunks, {report.sentences} sentences "
               f"into {report.shards} shards in {out} ({steps}; {report.embed_actors} embedding actors"
               f"{' on GPUs' if report.gpu else ''})")


@cluster_app.command("serve")
def cluster_serve(
    collection: Annotated[Path, typer.Option("--collection", help="Folder `citeqa cluster ingest` wrote.")],
    replicas: Annotated[int, typer.Option("--replicas", help="Actors serving each shard.")] = 2,
    host: Annotated[str | None, typer.Option(help="Address to bind (default: CITEQA_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: CITEQA_PORT).")] = None,
    address: AddressOpt = None,
) -> None:
    """Run the HTTP API (and the chat page) over a sharded collection's actors on a Ray cluster."""
    _require("cluster")
    from citeqa.cluster.serve import connect, create_gateway
    from citeqa.service.server import make_server, run_server

    settings = _settings(host=("--host", host), port=("--port", port))
    server = None

    def stop() -> None:
        server.should_exit = True

    try:
        connect(address)
        app_ = create_gateway(collection, replicas, settings, on_load_failure=stop)
    except CiteqaError as exc:
        _fail(exc.message)
    except ConnectionError as exc:
        _fail(f"no Ray cluster at {address or 'RAY_ADDRESS'}: {exc}; start one with `ray start --head`")
    server = make_server(settings, app_)
    run_server(server)
    failure = app_.state.engine.failure
    if failure is not None:
        _fail(f"{failure.message}; check the shards' folders and the cluster, then start again")
    if not server.started:
        raise typer.Exit(1)


@cluster_app.command("bench")
def cluster_bench(
    name: Annotated[str, typer.Option("--set", help="Evaluation set whose corpus and questions to use.")]
    = "htmldocs",
    out: Annotated[Path, typer.Option("--out", help="Where the figures go (JSON).")]
    = Path("bench/results/cluster.json"),
    docs_md: Annotated[Path, typer.Option("--docs-md", help="Page whose bench section gets the table.")]
    = Path("docs/cluster.md"),
    rounds: Annotated[int, typer.Option("--rounds", help="Passes over the set's questions.")] = 3,
    clients: Annotated[int, typer.Option("--clients", min=1, help="Clients asking at once in the loaded "
                                         "measurement (the other has one).")] = 8,
) -> None:
    """CPU per answer through the cluster against one process, and ingestion per core against plain
    processes, side by side on a local two-node Ray cluster (several minutes)."""
    _require("cluster")
    from citeqa.cluster import bench as cluster_bench_

    result = cluster_bench_.run(name, out, docs_md, rounds=rounds, clients=clients)
    typer.echo(cluster_bench_.table(result))
    typer.echo(f"wrote {out} and {docs_md}")


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
        typer.echo(f"error: {problems(exc)}", err=True)
        sys.exit(1)
