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
call and kept; one that dies (killed, out of memory) is started again at the next
call, and the rest of the call it died in runs in-process (`fallback`). Searches
embed one text in-process: a round trip would only add to it.

Left out: one child shared by several app processes, GPU.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import weakref
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from .children import start_child

_START_TIMEOUT = 60.0  # seconds the child may take to import ONNX Runtime and load

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
        weakref.finalize(self, _stop, self.__dict__)

    def run(self, batches: Batches, *, fallback: Run) -> Iterator[np.ndarray]:
        """Each batch's vectors, in order; batches the child could not do by `fallback`."""
        ticket = object()
        with self._send_lock:
            try:
                conn = self._connection()
                conn.send(batches)
            except (OSError, EOFError, TimeoutError):
                _stop(self.__dict__)  # started again at the next call
                conn = None
            else:
                with self._turn:
                    self._queue.append(ticket)
        if conn is None:  # run here, with the lock free for the calls after this one
            yield from fallback(batches)
            return
        done = 0
        try:
            with self._turn:
                self._turn.wait_for(lambda: self._queue[0] is ticket)
            while done < len(batches):
                reply = conn.recv()
                if not isinstance(reply, np.ndarray):
                    raise RuntimeError(f"the model process failed: {reply}")
                yield reply
                done += 1
        except (OSError, EOFError, RuntimeError):
            self._stop_if(conn)  # started again at the next call
            yield from fallback(batches[done:])
        except BaseException:
            # Stopped mid-call (the caller gave up on the generator, Ctrl-C): the
            # child is still sending this call's vectors, so it cannot take the next.
            self._stop_if(conn)
            raise
        finally:
            with self._turn:
                self._queue.remove(ticket)
                self._turn.notify_all()

    def _stop_if(self, conn: Connection) -> None:
        """Stop the child this call used (not a newer one another call started)."""
        with self._send_lock:
            if self._child is not None and self._child[1] is conn:
                _stop(self.__dict__)

    def _connection(self) -> Connection:
        if self._child is not None and self._child[0].poll() is None:
            return self._child[1]
        _stop(self.__dict__)
        onnx_file, pad_id, streams = self._args
        args = f"{onnx_file!r}, {pad_id}, {streams}"
        proc, conn = start_child(f"from rag.model_process import serve; serve({{fd}}, {args})")
        self._child = (proc, conn)
        if not conn.poll(_START_TIMEOUT) or conn.recv() != "ready":
            raise TimeoutError("the model process did not start")
        return conn


def _stop(state: dict[str, Any]) -> None:
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
    from .embeddings import IdsModel, run_batches

    conn = Connection(fd)
    model = IdsModel(Path(onnx_file))
    conn.send("ready")
    while True:
        try:
            batches = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        try:
            for vectors in run_batches(lambda b: model.encode(b, pad_id), batches, streams):
                conn.send(vectors.astype(np.float32))
        except (EOFError, OSError):
            return
        except Exception as e:  # reported to the app, which runs the call itself
            with contextlib.suppress(Exception):
                conn.send(f"{type(e).__name__}: {e}"[:500])
