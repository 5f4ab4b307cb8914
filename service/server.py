"""The HTTP server `citeqa serve` runs: uvicorn, with deadlines for slow clients and for shutdown.

uvicorn times a connection out only between requests, once it has answered one (keep-alive): a client
that opens a connection and sends nothing, or trickles its headers a byte at a time, holds a connection
and its file descriptor for as long as it likes, and enough of them shut everyone else out (slowloris).
So every request's headers get a deadline here. On SIGTERM or Ctrl-C, requests in flight get
`shutdown_timeout_s` to finish before uvicorn cancels them, where it would otherwise wait for the
slowest client for ever.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
import time

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

from citeqa.service import logs
from citeqa.service.config import Settings
from citeqa.service.terminal import page_url

log = logging.getLogger("citeqa")


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request headers are not all in within
    `header_timeout` seconds of it opening or of the previous response ending. The deadline is not
    pushed back by each byte received, as uvicorn's keep-alive timer is, so trickling does not help."""

    header_timeout = 10.0  # seconds; `protocol()` makes a subclass with the configured value
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # uvicorn starts its keep-alive timer exactly when it waits for the next request (not when it
        # starts a pipelined one, whose headers are in, nor when the connection is closing).
        if self.timeout_keep_alive_task is not None:
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """What the parser could not read (a request line and headers over 64 KB, bytes that are not
        HTTP) gets the API's one error shape, where uvicorn sends a plain-text line."""
        body = json.dumps({"error": {"code": "bad_request", "message": (
            "request: not valid HTTP/1.1, or its request line and headers are over 64 KB; send long "
            "lists in a POST body")}}).encode()
        head = [b"HTTP/1.1 400 Bad Request", *(name + b": " + value for name, value
                                                in self.server_state.default_headers),
                b"content-type: application/json", b"content-length: " + str(len(body)).encode(),
                b"connection: close"]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()


def protocol(header_timeout: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class for one server: uvicorn makes one per connection and passes no options."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": header_timeout})


class WorkerProtocol(HeaderDeadlineProtocol):
    """The protocol of `--workers`: uvicorn imports it by name in each worker process, where the settings
    (CITEQA_*, which the command line's options were copied into) give its deadline."""

    header_timeout = Settings().header_timeout_s


def run_workers(settings: Settings) -> None:
    """Serve with `settings.workers` processes on one socket (uvicorn's supervisor). Each builds the app
    from the settings in its environment and loads the index; the index is built from the seeds here
    first, once, so the workers never race to build it."""
    from citeqa.index import building

    if settings.seed_dir is not None and not building.ever_built(settings.data_dir):
        log.info("no index in %s yet; building it from %s", settings.data_dir, settings.seed_dir)
        building.sync_folder(settings.data_dir, settings.seed_dir, settings.embedder(),
                             settings.chunk_params(), progress=False)
    metrics_dir = tempfile.mkdtemp(prefix="citeqa-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    config = uvicorn.Config("citeqa.service.app:create_app", factory=True, workers=settings.workers,
                            host=settings.host, port=settings.port, access_log=False,
                            log_config=logs.config(settings.log_level, settings.log_format),
                            http="citeqa.service.server:WorkerProtocol",
                            timeout_keep_alive=settings.keep_alive_s,
                            timeout_graceful_shutdown=settings.shutdown_timeout_s)
    sock = config.bind_socket()
    say_where(settings)
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def make_server(settings: Settings, app: FastAPI) -> uvicorn.Server:
    config = uvicorn.Config(app, host=settings.host, port=settings.port, access_log=False,
                            log_config=logs.config(settings.log_level, settings.log_format),
                            http=protocol(settings.header_timeout_s),
                            timeout_keep_alive=settings.keep_alive_s,
                            timeout_graceful_shutdown=settings.shutdown_timeout_s)
    say_where(settings)
    return uvicorn.Server(config)


def say_where(settings: Settings) -> None:
    """Where a person opens the page (logged once logging is set up: text on a terminal, else JSON)."""
    log.info("the chat page will be at %s (the API's reference at /docs); Ctrl-C stops it",
             page_url(settings.host, settings.port))


def run_server(server: uvicorn.Server) -> None:
    """Serves until SIGTERM or Ctrl-C. Once shut down, uvicorn raises the signal again for the handler it
    found: a SIGTERM that ended in a graceful shutdown then exits 0, not as killed (-15). One arriving
    before uvicorn listens for signals still stops the server."""

    def stop(signum, frame) -> None:
        server.should_exit = True

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    _leave_late_threads(server.config.timeout_graceful_shutdown or 0.0)


def _leave_late_threads(seconds: float) -> None:
    """uvicorn cancels the requests still in flight at the shutdown deadline, but a write's embedding goes
    on in its worker thread, and Python waits for such threads at exit (56 s for a large upload). They get
    the same time again; then the process exits without them. Such a write was never acknowledged (its
    client got a 503), and the index is whole after a stop at any moment (test_crash_safety.py)."""
    deadline = time.monotonic() + seconds
    late = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    for thread in late:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in late):
        log.warning("shutdown: left %d unfinished task(s) behind; a write among them was not acknowledged "
                    "and is stored whole or not at all", sum(t.is_alive() for t in late))
        logging.shutdown()
        os._exit(0)
