"""Training an embedding model (a step or two of the real trainer) and keeping it
under the data dir with its stamp; a collection that names it is searched with it."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from rag.components.tuned_models import TunedModelInfo, TunedModels, is_tuned
from rag.core.errors import ModelNotFoundError, TuningCancelled, TuningError
from rag.core.models import CollectionInfo
from rag.core.settings import Settings
from rag.finetune.tuning import TrainOptions, train_embedding
from rag.finetune.tuning_pairs import TuningPair
from rag.services.resources import LazyEmbedder

pytestmark = pytest.mark.slow

PAIRS = [
    TuningPair(
        f"What does report {i} say about topic {i % 3}?",
        f"Report {i} says topic {i % 3} grew in the quarter.",
        f"d{i % 3}",
        f"d{i % 3}:{i}",
        negative="An unrelated passage about the weather.",
    )
    for i in range(8)
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TunedModels, TunedModelInfo]:
    root = tmp_path_factory.mktemp("data") / "tuned"
    models = TunedModels(root)
    out = tmp_path_factory.mktemp("train") / "model"
    seen: list[tuple[int, int]] = []
    # Two steps: the first runs at a warm-up learning rate of 0.
    options = TrainOptions(batch_size=4, max_steps=2)
    report = train_embedding("all-MiniLM-L6-v2", PAIRS, out, options,
                             progress=lambda a, b: seen.append((a, b)))  # fmt: skip
    assert report.steps == 2 and report.pairs == len(PAIRS)
    assert seen == [(1, 2), (2, 2)]
    name = models.new_name()
    stamp = TunedModelInfo(name, "reports", "all-MiniLM-L6-v2", "pairs", report.pairs, "hash",
                           time.time(), report.seconds)  # fmt: skip
    info = models.save(out, stamp)
    assert not out.exists()  # moved in whole
    return models, info


def test_a_saved_model_is_listed_stamped_and_loaded_by_its_name(
    trained: tuple[TunedModels, TunedModelInfo],
) -> None:
    models, info = trained
    assert is_tuned(info.name)
    assert models.list("reports") == [info] and models.list("other") == []
    figures = {"base": {"hit@5": 0.5}, "tuned": {"hit@5": 0.6}}
    assert models.record(info.name, figures=figures, decision="swapped").decision == "swapped"
    assert models.get(info.name).figures == figures
    e = models.embedder(info.name, Settings(embedding_backend="onnx-int8"))
    assert e.name == info.name and e.dimension == 384 and e.max_tokens == 254
    v = e.embed(["topic 1 grew", "the weather"])
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-3)
    assert models.embedder(info.name, Settings()) is e  # loaded once


def test_a_collection_indexed_with_a_tuned_model_is_searched_with_it(
    trained: tuple[TunedModels, TunedModelInfo],
) -> None:
    models, info = trained
    lazy = LazyEmbedder(lambda: pytest.fail("the base model is not needed"),
                        settings=Settings(data_dir=models.root.parent))  # fmt: skip
    tuned = CollectionInfo("reports", info.name, 384, 200, 40, 0, 0, 0.0)
    assert lazy.for_collection(tuned).name == info.name


def test_unknown_or_malformed_names_are_refused(tmp_path: Path) -> None:
    models = TunedModels(tmp_path)
    with pytest.raises(ModelNotFoundError):
        models.get("tuned:0123456789ab")
    with pytest.raises(ModelNotFoundError):
        models.get("tuned:../../etc")


def test_a_stopped_training_keeps_nothing(tmp_path: Path) -> None:
    out = tmp_path / "model"
    with pytest.raises(TuningCancelled):
        train_embedding("all-MiniLM-L6-v2", PAIRS, out, TrainOptions(batch_size=4, max_steps=3),
                        should_stop=lambda: True)  # fmt: skip
    assert not out.exists()
    with pytest.raises(TuningError, match="at least 2 training pairs"):
        train_embedding("all-MiniLM-L6-v2", PAIRS[:1], out, TrainOptions())
