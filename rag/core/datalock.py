"""One process per data directory: a lock file that a second process fails on at once.

The embedded Chroma store (`PersistentClient`) must not be opened by two processes;
`lock_data_dir` takes `<data_dir>/.docchat.lock` with `flock` for the life of the
process and writes the holder's pid into it, so the second process can name it.

Left out: releasing the lock before the process ends (nothing needs it), and
network file systems where `flock` is not honoured.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from typing import IO

from rag.core.errors import StoreUnavailableError

LOCK_NAME = ".docchat.lock"

_held: dict[Path, IO[str]] = {}  # data dir -> open lock file, one per process
_guard = threading.Lock()


def lock_data_dir(data_dir: Path) -> None:
    """Take the data dir for this process (again: a no-op), or raise if another holds it."""
    key = data_dir.resolve()
    with _guard:
        if key in _held:
            return
        data_dir.mkdir(parents=True, exist_ok=True)
        f = open(key / LOCK_NAME, "a+")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            raise StoreUnavailableError(
                f"The data directory is in use by another DocChat process "
                f"(pid {holder}). Stop it, use another DOCCHAT_DATA_DIR, or run a Chroma "
                "server (DOCCHAT_CHROMA_HOST) to share one index between processes."
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        _held[key] = f
