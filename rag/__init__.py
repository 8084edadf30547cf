"""DocChat's engine: load, split, embed, store, retrieve, prompt, generate.

The public API is re-exported here; pages, the CLI and the benchmarks import from
`rag` only. Nothing in this package imports Streamlit.
"""

from .answering import AnswerStream, Retrieval
from .conversations import Conversation, Conversations, Turn, failed_answer, source_label
from .covid_qa import run_covid_qa
from .embeddings import Embedder, load_embedder
from .engine import DocChat
from .errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    ConfigError,
    DatasetError,
    DocumentNotFoundError,
    EmbeddingServerError,
    ExtractionError,
    JobNotFoundError,
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
from .evaluation import EvalQuestion, EvalReport, evaluate
from .finetune.compare import VARIANTS, Comparison, Variant, compare
from .finetune.dataset import (
    QAPair,
    TrainingSet,
    ValidationIssue,
    ValidationReport,
    build_training_set,
    default_system_prompt,
    drop_invalid,
    eval_questions_jsonl,
    pairs_jsonl,
    validate_examples,
    validate_pairs,
)
from .finetune.jobs import FineTuneJobs, JobEvent, JobInfo
from .finetune.pairs import (
    GenerationProgress,
    GenerationResult,
    discard_journal,
    generate_pairs,
    journal_path,
    load_journal,
    select_chunks,
)
from .finetune.qa_file import import_pairs
from .generation import LLM, Completion
from .ingest.loaders import SUPPORTED_EXTENSIONS, load
from .ingest.splitting import split
from .jobs import Job, JobFile
from .markdown import (
    SafeMarkdownStream,
    escape_markdown,
    highlight,
    link_citations,
    safe_markdown,
    text_view_html,
)
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
    Upload,
)
from .page_view import PageView, TextView
from .prompts import build_prompt
from .query import clean_query
from .question_set import read_question_set
from .retrieval import SearchOptions
from .sec_10q import run_sec_10q
from .settings import Settings
from .store import Store
from .support import supporting_span

__all__ = [
    "LLM",
    "SUPPORTED_EXTENSIONS",
    "VARIANTS",
    "Answer",
    "AnswerStream",
    "Block",
    "Chunk",
    "CollectionExistsError",
    "CollectionInfo",
    "CollectionNotFoundError",
    "Comparison",
    "Completion",
    "ConfigError",
    "Conversation",
    "Conversations",
    "DatasetError",
    "DocChat",
    "DocumentInfo",
    "DocumentNotFoundError",
    "Embedder",
    "EmbeddingServerError",
    "EvalQuestion",
    "EvalReport",
    "ExtractionError",
    "FineTuneJobs",
    "GenerationProgress",
    "GenerationResult",
    "Hit",
    "IngestResult",
    "Job",
    "JobEvent",
    "JobFile",
    "JobInfo",
    "JobNotFoundError",
    "LLMError",
    "LimitExceededError",
    "LoadedDocument",
    "NoTextError",
    "PageView",
    "PasswordRequiredError",
    "QAPair",
    "RagError",
    "ReindexNeededError",
    "Retrieval",
    "SafeMarkdownStream",
    "SearchOptions",
    "Settings",
    "Source",
    "Store",
    "StoreUnavailableError",
    "TextView",
    "TrainingSet",
    "Turn",
    "UnsupportedFileError",
    "Upload",
    "ValidationIssue",
    "ValidationReport",
    "Variant",
    "WrongPasswordError",
    "build_prompt",
    "build_training_set",
    "clean_query",
    "compare",
    "default_system_prompt",
    "discard_journal",
    "drop_invalid",
    "escape_markdown",
    "eval_questions_jsonl",
    "evaluate",
    "failed_answer",
    "generate_pairs",
    "highlight",
    "import_pairs",
    "journal_path",
    "link_citations",
    "load",
    "load_embedder",
    "load_journal",
    "pairs_jsonl",
    "read_question_set",
    "run_covid_qa",
    "run_sec_10q",
    "safe_markdown",
    "select_chunks",
    "source_label",
    "split",
    "supporting_span",
    "text_view_html",
    "validate_examples",
    "validate_pairs",
]
