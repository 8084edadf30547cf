"""The extraction worker's side: the loop a worker process runs (see `extract.py`).

A worker imports the parsers once, caps its own address space, then loads each file
the app sends over its socket and replies with the `LoadedDocument` (or the error),
its peak memory, and, while OCR reads pages, progress messages. It exits when the
socket closes or the app is gone. This module runs only in the child.

Left out: everything about starting, reusing and killing workers (`extract.py`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from rag.core.errors import RagError
from rag.ingest.loaders import load

# Imported once per worker, up front; the OCR engine loads on first use (0.6 s).
_PARSERS = ("pypdf", "pypdfium2", "bs4", "lxml.html", "docx")


def _serve_fd(fd: int, memory_mb: float) -> None:
    """The worker's entry point (see `_Worker`): serve the socket `fd` until it closes."""
    import importlib
    import logging

    # Repairs of broken PDFs are logged at WARNING, and a parser hitting the memory cap
    # prints "Exception ignored" noise (lxml); the reply to the app says what matters.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    sys.unraisablehook = lambda _: None
    for module in _PARSERS:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    parent = os.getppid()

    def watch_parent() -> None:
        # Exit when the app is gone (even SIGKILLed) instead of finishing a bomb.
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    _serve(Connection(fd), memory_mb)


def _serve(conn: Connection, memory_mb: float) -> None:
    """The worker's loop: load each file sent, reply, until the socket closes."""
    import resource

    # The cap is on top of what the idle worker already maps (interpreter, parsers,
    # thread stacks), so it means "memory one file may take" whatever the platform.
    limit = _mapped_bytes() + int(memory_mb * 1024 * 1024)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    conn.send("ready")
    while True:
        try:
            name, data, password, options = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return

        def heard(stage: str, done: int, total: int) -> None:
            conn.send(("progress", (stage, done, total), 0.0))

        reply: tuple[str, Any, float]
        try:
            doc = load(name, data, password=password, options=options, progress=heard)
            reply = ("ok", doc, 0.0)
        except MemoryError:
            reply = ("memory", None, 0.0)
        except RagError as e:
            if isinstance(e.__cause__, MemoryError):  # loaders wrap it; the cap was hit
                reply = ("memory", None, 0.0)
            else:
                reply = ("error", (type(e).__name__, str(e)), 0.0)
        except BaseException as e:  # reported to the parent as a bug
            reply = ("bug", (type(e).__name__, str(e)[:500]), 0.0)
        del data
        reply = (reply[0], reply[1], _peak_rss_mb())
        try:
            conn.send(reply)
        except MemoryError:
            with contextlib.suppress(Exception):
                conn.send(("memory", None, _peak_rss_mb()))
        except (OSError, ValueError):
            return


def _status_kb(field: str) -> int | None:
    """A field of /proc/self/status in kB (Linux); None where there is no /proc."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _mapped_bytes() -> int:
    kb = _status_kb("VmSize")
    return kb * 1024 if kb is not None else 1024**3  # unknown: assume about 1 GB


def _peak_rss_mb() -> float:
    # VmHWM, not getrusage(): ru_maxrss survives exec, so it would report the app's peak.
    kb = _status_kb("VmHWM")
    return kb / 1024 if kb is not None else 0.0
