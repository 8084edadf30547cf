"""DocChat's engine: load, split, embed, store, retrieve, prompt, generate.

The public API is re-exported here; pages, the CLI and the benchmarks import from
`rag` only. Nothing in this package imports Streamlit.
"""

from rag.answering.prompts import build_prompt
from rag.answering.stream import AnswerStream, Retrieval
from rag.answering.support import supporting_span
from rag.components.conversations import (
    Conversation,
    Conversations,
    Turn,
    failed_answer,
    source_label,
)
from rag.components.embeddings import Embedder, load_embedder
from rag.components.generation import LLM, Completion
from rag.components.store import Store
from rag.core.errors import (
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
from rag.core.models import (
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
from rag.core.settings import Settings
from rag.datasets.covid_qa import run_covid_qa
from rag.datasets.sec_10q import run_sec_10q
from rag.engine import DocChat
from rag.evaluation.measures import EvalQuestion, EvalReport, evaluate
from rag.evaluation.question_set import read_question_set
from rag.finetune.compare import VARIANTS, Comparison, Variant, compare
from rag.finetune.dataset import (
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
from rag.finetune.jobs import FineTuneJobs, JobEvent, JobInfo
from rag.finetune.pairs import (
    GenerationProgress,
    GenerationResult,
    discard_journal,
    generate_pairs,
    journal_path,
    load_journal,
    select_chunks,
)
from rag.finetune.qa_file import import_pairs
from rag.ingest.loaders import SUPPORTED_EXTENSIONS, load
from rag.ingest.splitting import split
from rag.jobs.queue import Job, JobFile
from rag.retrieval.query import clean_query
from rag.retrieval.search import SearchOptions
from rag.views.markdown import (
    SafeMarkdownStream,
    escape_markdown,
    highlight,
    link_citations,
    safe_markdown,
    text_view_html,
)
from rag.views.page_view import PageView, TextView

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
