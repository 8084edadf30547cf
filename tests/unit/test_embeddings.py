"""The ONNX export's graph steps and the embedder's settings, without the model.

The ONNX embedder's parallel runs and its model process (the real model) are in
tests/integration/test_embeddings.py."""

from __future__ import annotations

import pytest


def test_negative_batch_size_or_threads_is_a_config_error() -> None:
    from rag import ConfigError, Settings
    from rag.components.remote_embeddings import open_embedder

    for name in ("DOCCHAT_EMBEDDING_BATCH_SIZE", "DOCCHAT_EMBEDDING_THREADS"):
        with pytest.raises(ConfigError, match=name):
            open_embedder(Settings.from_env({name: "-1"}, secrets_path=None))


@pytest.mark.slow
def test_export_fuses_attention_and_leaves_layer_norms_apart() -> None:
    # The export recipe's speed (see _fuse_attention): a change of transformers' export
    # that the optimizer no longer recognizes would silently cost the fused attention.
    from pathlib import Path

    import onnx

    from rag.components.local_model import packaged_model_path
    from rag.components.onnx_export import default_cache_dir, export_onnx_int8

    onnx_file = export_onnx_int8(Path(packaged_model_path()), default_cache_dir())
    ops = {node.op_type for node in onnx.load(str(onnx_file)).graph.node}
    assert "QAttention" in ops
    assert not ops & {"SkipLayerNormalization", "BiasGelu", "EmbedLayerNormalization"}


def test_a_graph_the_optimizer_does_not_know_is_kept_as_it_is(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    import onnx
    from onnx import TensorProto, helper

    from rag.components.onnx_export import _fuse_attention

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "plain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph), str(path))
    config = SimpleNamespace(num_attention_heads=12, hidden_size=384)
    assert _fuse_attention(path, config) == path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
