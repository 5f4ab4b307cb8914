"""The answering steps as the service runs them: questions embedded through the micro-batcher, answers
and abstentions counted in the metrics. Shared by /v1/ask, its stream and the chat routes."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from citeqa.answer import pipeline
from citeqa.index.engine import Engine
from citeqa.service.batching import QueryBatcher
from citeqa.service.metrics import Metrics
from citeqa.service.schemas import AskRequest

# Once the question is embedded, searching and composing take about a millisecond on the seeds (BM25
# adds 3-7 ms at a million passages): they run on the event loop. Handing them to worker threads cost
# more than that here (one client's p50 went from 12.6 to 9.6 ms when they stopped).


@dataclass
class Asking:
    engine: Engine
    batcher: QueryBatcher
    top_k: int  # when a request does not say
    threshold: float  # the abstention threshold
    metrics: Metrics

    async def embed(self, text: str) -> np.ndarray:
        """The text's embedding, batched with the questions arriving at the same time."""
        self.engine.snapshot()  # 503 while the index loads, before the model is asked for anything
        return await self.batcher.embed(text)

    async def retrieve(self, body: AskRequest) -> pipeline.Retrieved:
        began = time.perf_counter()
        history = [t.model_dump() for t in body.history]
        vector = await self.embed(pipeline.query_for(body.question, history))
        return pipeline.retrieve(self.engine, body.question, top_k=body.top_k or self.top_k,
                                 doc_ids=body.doc_ids, history=history, vector=vector, began=began)

    def finish(self, found: pipeline.Retrieved) -> pipeline.Reply:
        """The answer to what `retrieve` found; counts answers and abstentions."""
        reply = pipeline.finish(found, threshold=self.threshold)
        self.metrics.answers.inc()
        if reply.answer.abstained:
            self.metrics.abstentions.inc()
        return reply

    async def answer(self, body: AskRequest) -> pipeline.Reply:
        return self.finish(await self.retrieve(body))
