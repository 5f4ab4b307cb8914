"""The question batcher: questions that arrive together share one model call, and each gets its own vector."""

import asyncio

import numpy as np
import pytest

from citeqa.service.batching import QueryBatcher


def run(coro):
    return asyncio.run(coro)


def test_concurrent_questions_share_model_calls_and_get_the_vectors_of_their_own_text(embedder):
    calls = []

    def encode(texts):
        calls.append(list(texts))
        return embedder.encode(texts)

    questions = [f"What happened in town number {i}?" for i in range(16)]

    async def main():
        batcher = QueryBatcher(encode, window_ms=5, max_batch=32)
        vectors = await asyncio.gather(*(batcher.embed(q) for q in questions))
        await batcher.close()
        return vectors

    vectors = run(main())
    assert len(calls) == 1 and sorted(calls[0]) == sorted(questions)
    alone = embedder.encode(questions)
    for got, want in zip(vectors, alone, strict=True):
        assert np.allclose(got, want, atol=1e-5)


def test_batches_are_capped_and_a_repeated_question_is_embedded_once():
    calls = []

    def encode(texts):
        calls.append(list(texts))
        return np.array([[float(len(t))] for t in texts])

    async def main():
        batcher = QueryBatcher(encode, window_ms=5, max_batch=4)
        out = await asyncio.gather(*(batcher.embed(t) for t in ["a", "bb", "a", "ccc", "dddd", "eeeee"]))
        await batcher.close()
        return out

    out = run(main())
    assert [v[0] for v in out] == [1, 2, 1, 3, 4, 5]
    assert [len(c) for c in calls] == [3, 2], "the first batch takes 4 questions, 'a' twice counted once"


def test_a_lone_question_is_not_held_for_the_window_but_company_is_gathered():
    """One client alone never waits for the window; once questions come together, later arrivals
    within the window join one batch."""
    calls = []

    def encode(texts):
        calls.append(list(texts))
        return np.array([[float(len(t))] for t in texts])

    async def main():
        loop = asyncio.get_running_loop()
        batcher = QueryBatcher(encode, window_ms=2000, max_batch=32)
        began = loop.time()
        await batcher.embed("alone")
        alone_s = loop.time() - began
        await asyncio.gather(batcher.embed("a"), batcher.embed("bb"))  # arrive together: one batch

        async def late(text, after):
            await asyncio.sleep(after)
            return await batcher.embed(text)

        await asyncio.gather(late("c", 0), late("dd", 0.3))  # 0.3 s apart, within the 2 s window
        await batcher.close()
        return alone_s

    alone_s = run(main())
    assert alone_s < 1.0, f"a lone question waited {alone_s:.2f} s, as if for the 2 s window"
    assert calls == [["alone"], ["a", "bb"], ["c", "dd"]]


def fail_then_recover(broken, fixed):
    """Two questions batched through `broken`, then one more after the model is swapped for `fixed`."""
    async def main():
        batcher = QueryBatcher(broken, window_ms=1, max_batch=32)
        results = await asyncio.gather(batcher.embed("x"), batcher.embed("y"), return_exceptions=True)
        batcher.encode = fixed
        after = await batcher.embed("z")
        await batcher.close()
        return results, after

    return run(main())


def test_a_failing_model_call_fails_its_waiters_and_the_next_batch_still_works():
    def explode(texts):
        raise RuntimeError("model exploded")

    results, after = fail_then_recover(explode, lambda texts: np.ones((len(texts), 2)))
    assert all(isinstance(r, RuntimeError) for r in results)
    assert after.tolist() == [1.0, 1.0]


def test_a_cancelled_request_does_not_disturb_the_others():
    async def main():
        def encode(texts):
            return np.zeros((len(texts), 1))

        batcher = QueryBatcher(encode, window_ms=20, max_batch=32)
        gone = asyncio.create_task(batcher.embed("gone"))
        kept = asyncio.create_task(batcher.embed("kept"))
        await asyncio.sleep(0.001)
        gone.cancel()
        vector = await kept
        await batcher.close()
        return vector

    assert run(main()).tolist() == [0.0]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="window_ms"):
        QueryBatcher(lambda t: t, window_ms=-1, max_batch=32)


def test_a_batch_that_breaks_after_the_model_call_still_answers_every_waiter():
    def one_row_short(texts):  # the batch cannot be handed out
        return np.ones((len(texts) - 1, 2))

    results, after = fail_then_recover(one_row_short, lambda texts: np.zeros((len(texts), 2)))
    assert all(isinstance(r, Exception) for r in results)
    assert after.tolist() == [0.0, 0.0]
