"""DocChat's engine: load, split, embed, store, retrieve, prompt, generate.

The public API is re-exported here; pages, the CLI and the benchmarks import from
`rag` only. Nothing in this package imports Streamlit.
"""

from .answering import AnswerStream, Retrieval, extractive_answer
from .embeddings import Embedder, SentenceTransformerEmbedder, load_embedder
from .engine import DocChat
from .errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    ConfigError,
    DocumentNotFoundError,
    ExtractionError,
    LimitExceededError,
    LLMError,
    NoTextError,
    PasswordRequiredError,
    RagError,
    ReindexNeededError,
    StoreUnavailableError,
    UnsupportedFileError,
    WrongPasswordError,
)
from .generation import LLM, Completion
from .loaders import SUPPORTED_EXTENSIONS, load
from .models import (
    Answer,
    Block,
    Chunk,
    CollectionInfo,
    DocumentInfo,
    Hit,
    IngestResult,
    LoadedDocument,
    Source,
)
from .prompts import build_prompt
from .query import clean_query
from .settings import Settings
from .splitting import split
from .store import Store

__all__ = [
    "LLM",
    "SUPPORTED_EXTENSIONS",
    "Answer",
    "AnswerStream",
    "Block",
    "Chunk",
    "CollectionExistsError",
    "CollectionInfo",
    "CollectionNotFoundError",
    "Completion",
    "ConfigError",
    "DocChat",
    "DocumentInfo",
    "DocumentNotFoundError",
    "Embedder",
    "ExtractionError",
    "Hit",
    "IngestResult",
    "LLMError",
    "LimitExceededError",
    "LoadedDocument",
    "NoTextError",
    "PasswordRequiredError",
    "RagError",
    "ReindexNeededError",
    "Retrieval",
    "SentenceTransformerEmbedder",
    "Settings",
    "Source",
    "Store",
    "StoreUnavailableError",
    "UnsupportedFileError",
    "WrongPasswordError",
    "build_prompt",
    "clean_query",
    "extractive_answer",
    "load",
    "load_embedder",
    "split",
]
