"""Answering: score and select cited sentences from retrieved passages, condense follow-ups, compose
the reply. Depends on citeqa.index only; the service, the evaluation and the benchmarks build on it."""
