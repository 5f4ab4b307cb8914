"""citeqa past one machine: a sharded collection ingested with Ray Data and served from Ray actors."""
