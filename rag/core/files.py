"""Write a file so that a reader, or a crash half-way, never sees half of it; sizes of trees.

The bytes go to a temporary file beside the target, named per process and thread so
two writers never share one, and are renamed over the target (atomic on POSIX).

Left out: fsync before the rename (a power cut may lose the newest version, never
mix two).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def write_atomic(path: Path, data: bytes | str) -> Path:
    """Write `data` (text as UTF-8) to `path`, creating its folder; returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}.{threading.get_ident()}")
    tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(tmp, path)
    return path


def tree_bytes(root: Path) -> int:
    """The total size of the files under `root` (0 if it does not exist)."""
    return sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())
