"""Child Python processes of the app: a fresh interpreter that runs one function of
`rag` over a socket (the extraction workers, the model process).

A child is `python -c`, never a fork of the app (which has torch, Streamlit and
Chroma threads), and never multiprocessing's spawn (which re-imports the caller's
`__main__`, so scripts without a main guard would run twice). It registers `rag` as
a bare package first: `rag/__init__` re-exports the whole engine (openai, chromadb,
the retrieval stack), 0.8 s of the 1.4 s an extraction worker took to start. It gets
no secrets (API keys, tokens, passwords) in its environment, and its stdout goes
nowhere (stray prints of a parser must not reach the app).

Left out: sandboxing beyond that (a child runs with the app's user and files).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path

_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])  # rag/
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)
# Seconds a new child may take to import what it runs (parsers, ONNX Runtime) and
# say "ready".
START_TIMEOUT = 60.0
_BARE_PACKAGE = (
    "import sys, types; rag = types.ModuleType('rag'); "
    f"rag.__path__ = [{_PACKAGE_DIR!r}]; sys.modules['rag'] = rag"
)


def start_child(call: str) -> tuple[subprocess.Popen[bytes], Connection]:
    """Start a child running `call`, Python code in which `{fd}` is the child's socket
    (e.g. "from rag.x import serve; serve({fd})"); the app's end of it comes back.

    Raises OSError when the process cannot be started. The child's socket end is
    closed here, so the app's death reads as EOF in the child, and the child's as EOF
    here.
    """
    ours, theirs = socket.socketpair()
    env = {k: v for k, v in os.environ.items() if not _SECRET_NAME.search(k)}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(_PACKAGE_DIR).parent), env.get("PYTHONPATH", "")) if p
    )
    fd = theirs.fileno()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", f"{_BARE_PACKAGE}; {call.replace('{fd}', str(fd))}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=(fd,),
            env=env,
        )
    except OSError:
        ours.close()
        raise
    finally:
        theirs.close()
    return proc, Connection(ours.detach())
