"""The unit layer's rule, checked: no Chroma and no embedding model.

An autouse guard fails a test loudly (not a skip, not a pass) the moment it tries to
create a Chroma client or to load the embedding model, by either backend: torch
(sentence-transformers) or ONNX Runtime (an exported model). Such a test belongs in
tests/integration. Allowed here: the fake OpenAI server (a thread on 127.0.0.1,
tests/fixtures/fake_openai.py) and the OCR models inside RapidOCR's wheel (reading a
scanned page is part of loading a PDF). torch is refused outright, so the packaged
tokenizer is too (transformers imports torch).

The guard fails with `pytest.fail`, whose exception is not an `Exception`, so the code
under test cannot catch it and turn it into an ordinary error (a `RagError`, a
fallback). A refused module not imported yet is refused at import rather than imported
here to be patched: chromadb takes 2.5 s to import and torch 9.5 s, which the unit
layer must not pay.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest

# Modules whose import alone means a test is about to use what the layer rules out.
_REFUSED_IMPORTS = {
    "chromadb": "a Chroma client",
    "sentence_transformers": "the embedding model (sentence-transformers)",
    "torch": "the embedding model (torch)",
}
_CHROMA_CLIENTS = (
    "Client", "PersistentClient", "HttpClient", "EphemeralClient", "CloudClient",
    "AsyncHttpClient",
)  # fmt: skip


def _refuse(what: str) -> NoReturn:
    pytest.fail(f"tests/unit may not use {what}: move this test to tests/integration")


def _refuser(what: str) -> Any:
    def refuse(*args: object, **kwargs: object) -> NoReturn:
        _refuse(what)

    return refuse


class _ImportGuard(importlib.abc.MetaPathFinder):
    """Fails the import of a refused module that this session has not loaded yet."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        top = name.partition(".")[0]
        if top in _REFUSED_IMPORTS and top not in sys.modules:
            _refuse(f"{_REFUSED_IMPORTS[top]} (import {name})")
        return None


def _ocr_only(session: Any) -> Any:
    """ONNX Runtime for RapidOCR's packaged models; any other model file is refused."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")  # where it is, not imported
    ocr_dir = Path(spec.origin).parent if spec and spec.origin else None

    def checked(model: object, *args: object, **kwargs: object) -> Any:
        if not (ocr_dir and isinstance(model, str | Path) and ocr_dir in Path(model).parents):
            _refuse(f"an ONNX model other than OCR's ({model!r:.80})")
        return session(model, *args, **kwargs)

    return checked


@pytest.fixture(autouse=True)
def _no_chroma_and_no_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Loaded already (a session that ran other layers first): patch what connects or loads.
    chromadb = sys.modules.get("chromadb")
    for name in _CHROMA_CLIENTS if chromadb else ():
        if hasattr(chromadb, name):
            monkeypatch.setattr(chromadb, name, _refuser(_REFUSED_IMPORTS["chromadb"]))
    st = sys.modules.get("sentence_transformers")
    if st is not None:
        refuse = _refuser(_REFUSED_IMPORTS["sentence_transformers"])
        monkeypatch.setattr(st, "SentenceTransformer", refuse)
    # ONNX Runtime is imported here (0.2 s) and patched, not refused: OCR runs on it.
    import onnxruntime as ort

    monkeypatch.setattr(ort, "InferenceSession", _ocr_only(ort.InferenceSession))
    # Not loaded yet: refuse the import itself.
    monkeypatch.setattr(sys, "meta_path", [_ImportGuard(), *sys.meta_path])
    yield
