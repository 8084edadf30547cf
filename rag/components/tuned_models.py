"""Embedding models tuned on a collection, kept under the data dir with their stamps.

Each tuned model is a directory `<data_dir>/tuned/<id>/`: `model/` (a
sentence-transformers model, as `finetune/tuning.py` saves it), `stamp.json` (what
`TunedModelInfo` holds: its collection, base model, training pairs' count and hash,
the held-out figures and the gate's decision) and, once loaded with the onnx-int8
backend, its ONNX int8 export (`onnx_export.py`, the default model's path). A
collection indexed with one records the name `tuned:<id>` as its model, so every
process loads the same weights for it (`embedder`); the data dir is shared by every
process already (the originals are there too).

Left out: deleting a tuned model (a collection may be using it; each is ~110 MB),
tuned models of remote embedding servers, and unloading a model once loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rag.components.embeddings import Embedder, load_embedder
from rag.core.errors import ConfigError, ModelNotFoundError
from rag.core.settings import Settings

TUNED_PREFIX = "tuned:"


def is_tuned(model_name: str) -> bool:
    """Whether a collection's model name is one of these tuned models."""
    return model_name.startswith(TUNED_PREFIX)


@dataclass(frozen=True)
class TunedModelInfo:
    """A tuned model's stamp."""

    name: str  # "tuned:<id>", what a collection indexed with it records
    collection: str
    base_model: str
    source: str  # "studio", "pairs" or "pseudo"
    pairs: int  # training pairs
    pairs_hash: str
    created: float
    train_s: float
    # Held-out figures: {"base": {...}, "tuned": {...}, "train_questions", ...}.
    figures: Mapping[str, object] = field(default_factory=dict)
    decision: str = ""  # "swapped", "refused" or "" (not decided yet)

    @property
    def id(self) -> str:
        return self.name.removeprefix(TUNED_PREFIX)


class TunedModels:
    """The tuned models under one root (`<data_dir>/tuned`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._loaded: dict[str, Embedder] = {}
        self._lock = threading.Lock()

    @staticmethod
    def new_name() -> str:
        return f"{TUNED_PREFIX}{uuid.uuid4().hex[:12]}"

    def save(self, trained: Path, info: TunedModelInfo) -> TunedModelInfo:
        """Move the trained model directory in, with its stamp: a directory renamed
        into place whole, so no process sees half a model."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".saving-{info.id}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        shutil.move(str(trained), str(tmp / "model"))
        _write_stamp(tmp / "stamp.json", info)
        os.replace(tmp, self.root / info.id)
        return info

    def list(self, collection: str | None = None) -> list[TunedModelInfo]:
        """The stamps (of one collection's models), newest first."""
        if not self.root.is_dir():
            return []
        found = []
        for d in self.root.iterdir():
            if d.name.startswith(".") or not (d / "stamp.json").is_file():
                continue
            info = _read_stamp(d / "stamp.json")
            if info is not None and (collection is None or info.collection == collection):
                found.append(info)
        return sorted(found, key=lambda i: i.created, reverse=True)

    def get(self, name: str) -> TunedModelInfo:
        stamp = self._dir(name) / "stamp.json"
        info = _read_stamp(stamp) if stamp.is_file() else None
        if info is None:
            raise ModelNotFoundError(f"No tuned embedding model {name!r} in this data dir.")
        return info

    def record(self, name: str, **changes: Any) -> TunedModelInfo:
        """Rewrite a stamp with these changes (figures, decision, collection)."""
        info = replace(self.get(name), **changes)
        _write_stamp(self._dir(name) / "stamp.json", info)
        return info

    def model_dir(self, name: str) -> Path:
        self.get(name)
        return self._dir(name) / "model"

    def embedder(self, name: str, settings: Settings) -> Embedder:
        """The tuned model as an embedder on the settings' local backend, loaded once;
        its `name` is the tuned name."""
        if settings.remote_embedding:
            raise ConfigError(
                "Tuned embedding models run locally: unset DOCCHAT_EMBEDDING_BASE_URL to "
                "search a collection indexed with one."
            )
        with self._lock:
            if name not in self._loaded:
                e = load_embedder(str(self.model_dir(name)),
                                  batch_size=settings.embedding_batch_size,
                                  backend=settings.embedding_backend, cache_dir=self._dir(name),
                                  threads=settings.embedding_threads)  # fmt: skip
                e.name = name  # what the collection records, on every machine alike
                self._loaded[name] = e
            return self._loaded[name]

    def _dir(self, name: str) -> Path:
        ident = name.removeprefix(TUNED_PREFIX)
        if not ident or not all(c in "0123456789abcdef" for c in ident):
            raise ModelNotFoundError(f"{name!r} is not a tuned model's name.")
        return self.root / ident


def _write_stamp(path: Path, info: TunedModelInfo) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
    tmp.write_text(json.dumps(asdict(info), indent=1, default=dict), encoding="utf-8")
    os.replace(tmp, path)


def _read_stamp(path: Path) -> TunedModelInfo | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return TunedModelInfo(**data)
    except (OSError, ValueError, TypeError):
        return None  # a stamp being replaced, or damaged: not listed
