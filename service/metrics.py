"""Prometheus metrics: requests and latency per route, documents and chunks indexed, abstentions."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from citeqa.index.engine import Engine

LATENCY_BUCKETS = (0.005, 0.01, 0.015, 0.025, 0.04, 0.06, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """One registry per app, so several apps in one process (tests) never collide. Under several workers
    (`PROMETHEUS_MULTIPROC_DIR` set by `citeqa serve --workers`), each one's counts live in files there
    and a scrape of any worker adds up all of them (prometheus-client's multiprocess mode)."""

    def __init__(self, engine: Engine):
        self.registry = CollectorRegistry()
        self.shared = "PROMETHEUS_MULTIPROC_DIR" in os.environ
        self.requests = Counter("citeqa_requests_total", "HTTP requests by route, method and status.",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("citeqa_request_seconds", "HTTP request latency by route.", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.abstentions = Counter("citeqa_abstentions_total", "Questions answered with an abstention.",
                                   registry=self.registry)
        self.answers = Counter("citeqa_answers_total", "Questions answered (abstentions included).",
                               registry=self.registry)

        self.embed_batches = Counter("citeqa_embed_batches_total", "Model calls that embedded questions.",
                                     registry=self.registry)
        self.embedded = Counter("citeqa_embedded_questions_total", "Questions embedded (their ratio to the "
                                "batches is the mean micro-batch size).", registry=self.registry)

        def count(key: str):
            return lambda: engine.snapshot().counts()[key] if engine.ready else 0

        self._counts = {}
        for key in ("documents", "chunks", "sentences"):
            gauge = Gauge(f"citeqa_{key}", f"{key.capitalize()} in the live index.", registry=self.registry,
                          multiprocess_mode="mostrecent")
            if self.shared:  # set when scraped: the scraping worker has caught up with every write
                self._counts[key] = (gauge, count(key))
            else:
                gauge.set_function(count(key))

    def exposition(self) -> bytes:
        """The text a scrape gets: this process's metrics, or every worker's added up."""
        if not self.shared:
            return generate_latest(self.registry)
        for gauge, read in self._counts.values():
            gauge.set(read())
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    def observe(self, route: str | None, method: str, status: int, seconds: float) -> None:
        """One finished request; the route label is the path template, never the raw path."""
        label = route or "unmatched"
        self.requests.labels(label, method, str(status)).inc()
        self.latency.labels(label).observe(seconds)
