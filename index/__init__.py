"""Ingestion and retrieval: documents in, cited passages out. Takes plain arguments, never the environment."""
