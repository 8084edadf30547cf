"""The exported ONNX embedding model run on token ids (`IdsModel`), and `run_batches`.

This is what the model process's child imports (`model_process.serve`), so it stays
light: numpy and the standard library; onnxruntime is imported when a model is made.
`run_batches` also runs every local embedder's batches in-process (`local_model.py`).

Left out: tokenizing (the app tokenizes; `onnx_embedder.py`), exporting the model
(`onnx_export.py`), GPU providers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np


def run_batches(
    encode: Callable[[list[Any]], np.ndarray], batches: list[list[Any]], streams: int
) -> Iterator[np.ndarray]:
    """`encode` of each batch, in order, `streams` batches at once (one thread each)."""
    if streams < 2 or len(batches) < 2:
        yield from map(encode, batches)
        return
    pool = ThreadPoolExecutor(streams, thread_name_prefix="docchat-embed")
    try:
        yield from pool.map(encode, batches)
    finally:
        pool.shutdown(cancel_futures=True)


class IdsModel:
    """The exported ONNX model on token ids: padded batches in, unit vectors out.

    One session, one thread per run: several runs at once (`run_batches`) are faster
    than ONNX Runtime splitting each run over the cores, which spends much of the
    time handing MiniLM's small operators (softmax, layer norm) between threads.
    """

    def __init__(self, onnx_file: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        # ONNX Runtime 1.32 fuses each residual Add and LayerNormalization into a
        # SkipLayerNormalization whose CPU kernel is slow here: 0.56 ms a node on a
        # 235-token text against 0.06 ms for the LayerNormalization it replaces.
        # Unfused, a text takes 12 % less CPU (18.95 against 21.42 ms at 200 tokens,
        # 3.11 against 3.53 at 35) and agrees with float32 as closely (cosine 0.9942).
        self._session = ort.InferenceSession(
            str(onnx_file),
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=["SkipLayerNormFusion"],
        )
        self.names = {i.name for i in self._session.get_inputs()}
        self.width = int(self._session.get_outputs()[0].shape[-1])

    def encode(self, batch: list[list[int]], pad_id: int) -> np.ndarray:
        # Padded to the batch's longest text; the mask keeps the padding out of the mean.
        mask = np.zeros((len(batch), max(len(ids) for ids in batch)), dtype=np.int64)
        ids = np.full(mask.shape, pad_id, dtype=np.int64)
        for row, text_ids in enumerate(batch):
            ids[row, : len(text_ids)] = text_ids
            mask[row, : len(text_ids)] = 1
        given = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, {k: v for k, v in given.items() if k in self.names})[0]
        weights = mask[..., None].astype(np.float32)
        vecs = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return vecs / np.clip(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12, None)


def cpu_count() -> int:
    """The CPU cores this process may run on (a container's or taskset's share)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
