"""A local sentence-transformers model exported to ONNX with int8 weights, once.

`export_onnx_int8` exports the model with torch.onnx, fuses each layer's attention
(`_fuse_attention`) and quantizes the weights (dynamic, per-channel int8) with
onnxruntime's quantizer, into `default_cache_dir()` (one export per machine, shared
by every data dir). sentence-transformers' own ONNX path needs `optimum`, whose
releases pin transformers 4.x.

Left out: running the exported model (`onnx_model.py`), models without a local
directory, other quantizations.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rag.core.errors import ConfigError

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
        raise ConfigError(
            "Cannot write the exported model to its cache directory (nor to the temporary "
            "directory). Use DOCCHAT_EMBEDDING_BACKEND=torch."
        ) from None
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
    SkipLayerNormalization (see `onnx_model.IdsModel`), BiasGelu (19.5 ms) and the embedding's
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
