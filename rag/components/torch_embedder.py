"""The `torch` embedding backend: a sentence-transformers model as is, on the CPU.

`SentenceTransformerEmbedder` loads the model offline (the packaged MiniLM, a local
path, or a model already in the Hugging Face cache) and embeds in batches, one call
at a time. Left out: the faster int8 ONNX backend (`onnx_embedder.py`), GPU selection.
"""

from __future__ import annotations

import threading

import numpy as np

from rag.components.local_model import LocalModel, offline, packaged_model_path, resolve_model
from rag.core.errors import ConfigError


class SentenceTransformerEmbedder(LocalModel):
    """A sentence-transformers model on the CPU, batched and normalized."""

    def __init__(self, model: str = "all-MiniLM-L6-v2", *, batch_size: int = 4) -> None:
        offline()
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
        dimension = self._model.get_embedding_dimension()
        max_length = self._model.max_seq_length
        if dimension is None or max_length is None:  # a model without a fixed size
            raise ConfigError(
                f"The embedding model {model!r} has no fixed vector size or input length."
            )
        self._dimension = int(dimension)
        # Two special tokens ([CLS], [SEP]) count against the model's sequence length.
        self.max_tokens = int(max_length) - 2
        self.batch_size = batch_size
        self._tokenizer = self._model.tokenizer
        # Torch releases the GIL, but one model is not safe to call from two threads
        # at once in every backend: serialize calls (the app has one model per process).
        self._lock = threading.Lock()

    def _encode(self, batch: list[str]) -> np.ndarray:
        with self._tokenizer_lock:  # encode tokenizes inside
            return self._model.encode(
                batch,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
