"""Run a loader on untrusted bytes.

For now this calls the loader in-process; the time and memory limit for hostile
files lives here so the rest of DocChat does not change when it is added.
"""

from __future__ import annotations

from .loaders import load
from .models import LoadedDocument


def extract(
    name: str, data: bytes, *, password: str | None = None, timeout: float = 120.0
) -> LoadedDocument:
    """The loaded document, or a RagError saying why it cannot be read."""
    return load(name, data, password=password)
