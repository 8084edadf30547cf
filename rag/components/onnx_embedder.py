"""The `onnx-int8` embedding backend: the model exported to ONNX with int8 weights.

About three times as fast as the torch backend on CPU: one text per run, one run per
core at once (`onnx_model.run_batches`), and long calls (an upload's files) in a
child process (`model_process.py`); a search's one text stays in-process. The app
tokenizes, the model runs on token ids (`onnx_model.IdsModel`); the export itself is
`onnx_export.py`.

Left out: models without mean pooling (use the torch backend), GPU selection.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.components.local_model import LocalModel, offline, packaged_model_path, resolve_model
from rag.components.model_process import ModelProcess
from rag.components.onnx_export import export_onnx_int8
from rag.components.onnx_model import IdsModel, cpu_count
from rag.core.errors import ConfigError

# Calls of at least this many batches go to the child process (a search's one text
# stays here: a round trip would only add to it).
PROCESS_MIN_BATCHES = 8


class OnnxInt8Embedder(LocalModel):
    """The same model through ONNX Runtime with int8 weights: about 3x faster on CPU.

    The model is exported from the local sentence-transformers copy and quantized
    (dynamic, per-channel int8) once, offline, into `cache_dir`; later loads reuse
    it. Vectors agree with the torch backend to a cosine of about 0.99 and keep the
    model's name, so a collection can be searched with either backend. Only models
    with mean pooling (the sentence-transformers default, MiniLM included) are
    supported.
    """

    def __init__(
        self, model: str, *, cache_dir: Path, batch_size: int = 1, threads: int = 0
    ) -> None:
        offline()
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        path = Path(resolve_model(model))
        if not path.is_dir():
            raise ConfigError(
                f"The onnx-int8 backend needs a local model directory; {model!r} is not one."
            )
        pooling = _read_json(path / "1_Pooling" / "config.json")
        # Both config formats: sentence-transformers < 6 (`pooling_mode_mean_tokens`,
        # the packaged model) and 6 (`pooling_mode`, what a tuned model is saved in).
        mean = pooling.get("pooling_mode_mean_tokens") or pooling.get("pooling_mode") == "mean"
        if pooling and not mean:
            raise ConfigError(f"{model!r} does not use mean pooling; use the torch backend.")
        onnx_file = export_onnx_int8(path, cache_dir)
        self.streams = threads or cpu_count()
        self._model = IdsModel(onnx_file)
        self._tokenizer = AutoTokenizer.from_pretrained(str(path))
        self._pad_id = int(self._tokenizer.pad_token_id or 0)
        # Long calls (an upload's files) run in a child process: see model_process.py.
        self._process = ModelProcess(onnx_file, self._pad_id, self.streams)
        st_config = _read_json(path / "sentence_bert_config.json")
        window = st_config.get("max_seq_length") or self._tokenizer.model_max_length
        self.max_length = min(int(window), 512) if window else 256
        self.max_tokens = self.max_length - 2
        self.name = "all-MiniLM-L6-v2" if str(path) == packaged_model_path() else model
        width = pooling.get("word_embedding_dimension") or pooling.get("embedding_dimension")
        self._dimension = int(width or 0) or self._model.width
        self.batch_size = batch_size
        # Calls may overlap: a session runs from several threads at once, and a call to
        # the model process is sent while the one before it is answered.
        self._lock = contextlib.nullcontext()

    def _inputs(self, texts: Sequence[str]) -> list[list[int]]:
        # All texts in one tokenizer call: per call, the tokenizer's Python side costs
        # about 1 ms, as much as the Rust work on a chunk (4 s of 35 in 4,200 calls).
        with self._tokenizer_lock:
            enc = self._tokenizer(
                list(texts),
                truncation=True,
                max_length=self.max_length,
                return_attention_mask=False,
                return_token_type_ids=False,
            )
        return list(enc["input_ids"])

    def _encode(self, batch: list[list[int]]) -> np.ndarray:
        return self._model.encode(batch, self._pad_id)

    def _run(self, batches: list[list[Any]]) -> Iterator[np.ndarray]:
        if len(batches) < PROCESS_MIN_BATCHES:
            return super()._run(batches)
        return self._process.run(batches, fallback=super()._run)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}
