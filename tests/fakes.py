"""Deterministic stand-ins for the slow parts: an embedder that needs no model.

`HashEmbedder` tokenizes on words and punctuation (with real character offsets, like
a model tokenizer) and embeds a text as the normalized sum of per-word hash vectors,
so texts sharing words are similar. Good enough for retrieval tests to be meaningful
and fast; it says nothing about real embedding quality.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Sequence

import numpy as np

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class HashEmbedder:
    def __init__(self, dimension: int = 64, name: str = "fake-hash", max_tokens: int = 254) -> None:
        self.name = name
        self.dimension = dimension
        self.max_tokens = max_tokens
        self.calls = 0
        # Counted under a lock: an upload embeds two files at once, from two threads.
        self._calls_lock = threading.Lock()

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for m in _TOKEN.finditer(text)]

    def _word_vector(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(word.lower().encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(self.dimension).astype(np.float32)

    def embed(
        self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        with self._calls_lock:
            self.calls += 1
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for m in re.finditer(r"\w+", text):
                out[i] += self._word_vector(m.group(0))
            norm = np.linalg.norm(out[i])
            out[i] = out[i] / norm if norm > 0 else out[i]
        if progress:
            progress(len(texts), len(texts))
        return out
