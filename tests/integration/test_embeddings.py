"""The local ONNX embedder's parallel runs (the torch one is used everywhere else)."""

from __future__ import annotations

from typing import NoReturn

import numpy as np
import pytest

from rag.components.embeddings import load_embedder


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [1, 3])
def test_parallel_runs_keep_each_vector_in_its_row(batch_size: int) -> None:
    # Lengths in no order: sorting by length, then running two batches at once, must
    # still put each vector back in its own text's row.
    texts = [f"Sentence {i} about " + "coronavirus " * ((i * 7) % 11) for i in range(13)]
    one = load_embedder("all-MiniLM-L6-v2", backend="onnx-int8", batch_size=batch_size, threads=1)
    two = load_embedder("all-MiniLM-L6-v2", backend="onnx-int8", batch_size=batch_size, threads=2)
    seen: list[tuple[int, int]] = []
    a = one.embed(texts)
    b = two.embed(texts, progress=lambda done, total: seen.append((done, total)))
    assert np.allclose(a, b, atol=1e-6)  # each run has one thread: the same arithmetic
    # Each text alone is the same vector, up to the padding of its batch (int8 activations
    # are scaled per batch, padding included: a cosine of 0.98 at batches of 3).
    alone = one.embed([texts[i] for i in (0, 5, 12)])
    assert (np.sum(alone * b[[0, 5, 12]], axis=1) > 0.97).all()
    assert seen == [(min(n, 13), 13) for n in range(batch_size, 13 + batch_size, batch_size)]
    assert two.embed([]).shape == (0, two.dimension)


@pytest.mark.slow
def test_model_process_gives_the_in_process_vectors_and_survives_its_death(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os
    import signal
    import threading

    import rag.components.model_process as model_process
    import rag.components.onnx_embedder as embeddings

    texts = [f"Passage {i}: " + "the virus binds ACE2 " * (i % 5 + 1) for i in range(20)]
    onnx = load_embedder("all-MiniLM-L6-v2", backend="onnx-int8", threads=2)
    with monkeypatch.context() as m:
        m.setattr(embeddings, "PROCESS_MIN_BATCHES", 10**9)  # all in this process
        here = onnx.embed(texts)
    assert np.allclose(onnx.embed(texts), here, atol=1e-6)  # in the child
    child = onnx._process._child  # type: ignore[attr-defined]
    assert child is not None and child[0].pid != os.getpid()

    os.kill(child[0].pid, signal.SIGKILL)  # killed between calls: started again
    child[0].wait()
    assert np.allclose(onnx.embed(texts), here, atol=1e-6)
    assert onnx._process._child[0].pid != child[0].pid  # type: ignore[attr-defined]

    # Calls from two threads overlap in the child and each gets its own vectors.
    got: dict[int, np.ndarray] = {}
    threads = [
        threading.Thread(target=lambda k=k: got.__setitem__(k, onnx.embed(texts[k:])))
        for k in (0, 3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert np.allclose(got[0], here, atol=1e-6) and np.allclose(got[3], here[3:], atol=1e-6)

    # A call given up mid-way (a cancelled job's progress report raises): the child,
    # still sending that call's vectors, is killed, and the next call gets a new one.
    class Cancelled(Exception):
        pass

    def cancel(done: int, total: int) -> None:
        raise Cancelled

    used = onnx._process._child  # type: ignore[attr-defined]
    with pytest.raises(Cancelled):
        onnx.embed(texts, progress=cancel)
    assert used[0].wait(timeout=10) != 0
    assert np.allclose(onnx.embed(texts), here, atol=1e-6)

    # A child that stops answering (stopped, stuck) is killed after the reply timeout
    # and the call finishes here.
    monkeypatch.setattr(model_process, "_REPLY_TIMEOUT", 0.5)
    stuck = onnx._process._child  # type: ignore[attr-defined]
    os.kill(stuck[0].pid, signal.SIGSTOP)
    assert np.allclose(onnx.embed(texts), here, atol=1e-6)
    assert stuck[0].wait(timeout=10) != 0

    # A child that cannot start: the call runs here instead.
    def cannot_start(call: str) -> NoReturn:
        raise OSError("no more processes")

    monkeypatch.setattr(model_process, "start_child", cannot_start)
    model_process._close(onnx._process.__dict__)  # type: ignore[attr-defined]
    assert np.allclose(onnx.embed(texts), here, atol=1e-6)

