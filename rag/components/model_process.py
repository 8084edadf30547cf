"""The ONNX embedding model in a child process of its own, for long embedding calls.

Why a process: chromadb's embedded client holds the GIL for the whole of each write
(its Rust binding releases it for reads only: chroma-core/chroma#3873), and an upload
writes file i while it embeds file i+1. In the app's process every write stopped
both embedding threads the next time they needed the GIL: `benchmarks/ingest.py`
took 59.4 s, and 49.6 s with the writes left out. The child has its own GIL.

The app tokenizes (the tokenizer is the app's) and sends a call's batches of token
ids; the child runs them, `streams` at once, and sends each batch's vectors back in
order, so progress is per batch as in-process. Calls from several threads overlap:
each is sent at once and answered in turn. The child is started at the first long
call and kept; one that dies (killed, out of memory), fails or stops answering (no
reply for `_REPLY_TIMEOUT`) is killed and started again at the next call, and the
rest of the call it failed in runs in-process (`fallback`). A call given up mid-way
(a cancelled job) kills the child too: it would still be sending that call's
vectors. Searches embed one text in-process: a round trip would only add to it.

The child imports this module and `onnx_model.py` only (numpy, then onnxruntime),
under a bare `rag` package (`children.py`): never the tokenizer, torch or the engine.

Left out: one child shared by several app processes, GPU.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import weakref
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from rag.components.onnx_model import IdsModel, run_batches
from rag.core.children import START_TIMEOUT, start_child

# Seconds the child may take over one batch before it counts as hung: a batch is one
# text by default (milliseconds); 256 texts of 256 tokens take about 5 s here.
_REPLY_TIMEOUT = 120.0

Batches = list[list[list[int]]]  # batches of texts' token ids
Run = Callable[[Batches], Iterator[np.ndarray]]


class ModelProcess:
    """The app's side: a child running `IdsModel(onnx_file)`, started when first used."""

    def __init__(self, onnx_file: Path, pad_id: int, streams: int) -> None:
        self._args = (str(onnx_file), pad_id, streams)
        self._child: tuple[subprocess.Popen[bytes], Connection] | None = None
        self._send_lock = threading.Lock()
        # Calls in the order they were sent, which is the order the child answers them:
        # the next call is sent while one is answered, so the child never waits for the
        # app (whose threads wait for the GIL while Chroma writes: 13.6 s of 52 idle).
        self._queue: list[object] = []
        self._turn = threading.Condition()
        weakref.finalize(self, _close, self.__dict__)

    def run(self, batches: Batches, *, fallback: Run) -> Iterator[np.ndarray]:
        """Each batch's vectors, in order; batches the child could not do by `fallback`.

        A child that dies, fails, or sends nothing for `_REPLY_TIMEOUT` is killed; the
        rest of the call runs in-process and the next call starts a new child.
        """
        ticket = object()
        child = None
        with self._send_lock:
            try:
                child = self._started()
                child[1].send(batches)
            except (OSError, EOFError, TimeoutError):
                self._drop()  # started again at the next call
                child = None
            else:
                with self._turn:
                    self._queue.append(ticket)
        if child is None:  # run here, with the lock free for the calls after this one
            yield from fallback(batches)
            return
        proc, conn = child
        done = 0
        try:
            with self._turn:
                self._turn.wait_for(lambda: self._queue[0] is ticket)
            while done < len(batches):
                if not conn.poll(_REPLY_TIMEOUT):
                    raise TimeoutError("the model process stopped answering")
                reply = conn.recv()
                if not isinstance(reply, np.ndarray):
                    raise RuntimeError(f"the model process failed: {reply}")
                yield reply
                done += 1
        except BaseException as e:
            # An Exception: the child died (EOF), hung, failed, or its connection was
            # dropped by a call that saw it die (OSError, TypeError from a closed
            # handle); the rest runs here, below. Anything else: stopped mid-call (the
            # caller gave up on the generator, Ctrl-C, a cancelled job), while the
            # child is still sending this call's vectors, so it cannot take the next.
            # Killed before the send lock is taken: a call blocked in `send` (its
            # batches larger than the socket's buffer, the child busy with this call's)
            # holds that lock, and only the child's death frees it.
            proc.kill()
            if not isinstance(e, Exception):
                self._forget(child)
                raise
        finally:
            with self._turn:
                self._queue.remove(ticket)
                self._turn.notify_all()
        if done < len(batches):  # out of its turn: the calls after this one go on
            self._forget(child)
            yield from fallback(batches[done:])

    def _forget(self, child: tuple[subprocess.Popen[bytes], Connection]) -> None:
        """Stop using `child` (not a newer one another call started)."""
        with self._send_lock:
            if self._child is child:
                self._drop()

    def _drop(self) -> None:
        """Kill the child, with the send lock held. Its connection is not closed here: a
        call may still be reading it (a closed descriptor's number could be reused by
        the next child's socket); it closes when no call holds it any more."""
        child, self._child = self._child, None
        if child is not None:
            with contextlib.suppress(Exception):
                child[0].kill()
                child[0].wait(timeout=5)

    def _started(self) -> tuple[subprocess.Popen[bytes], Connection]:
        """The running child, or a new one (with the send lock held)."""
        if self._child is not None and self._child[0].poll() is None:
            return self._child
        self._drop()
        onnx_file, pad_id, streams = self._args
        args = f"{onnx_file!r}, {pad_id}, {streams}"
        self._child = start_child(
            f"from rag.components.model_process import serve; serve({{fd}}, {args})"
        )
        conn = self._child[1]
        if not conn.poll(START_TIMEOUT) or conn.recv() != "ready":
            raise TimeoutError("the model process did not start")
        return self._child


def _close(state: dict[str, Any]) -> None:
    """At the app's end: kill the child and close its connection."""
    child = state.get("_child")
    state["_child"] = None
    if child is not None:
        proc, conn = child
        with contextlib.suppress(Exception):
            conn.close()
        with contextlib.suppress(Exception):
            proc.kill()
            proc.wait(timeout=5)


def serve(fd: int, onnx_file: str, pad_id: int, streams: int) -> None:
    """The child's loop: run each call's batches and send their vectors, until EOF."""
    # Ctrl-C in a terminal reaches the whole process group: the app decides what stops,
    # and its end of the socket closing (EOF here) ends this loop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(fd)
    model = IdsModel(Path(onnx_file))
    conn.send("ready")
    while True:
        try:
            batches = conn.recv()
        except (EOFError, OSError):
            return
        try:
            for vectors in run_batches(lambda b: model.encode(b, pad_id), batches, streams):
                conn.send(vectors.astype(np.float32))
        except (EOFError, OSError):
            return
        except Exception as e:  # reported to the app, which runs the call itself
            with contextlib.suppress(Exception):
                conn.send(f"{type(e).__name__}: {e}"[:500])
