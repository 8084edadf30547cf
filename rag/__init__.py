"""DocChat's engine: load, split, embed, store, retrieve, prompt, generate.

The public API, re-exported here: the pages and `app.py` import from `rag` only
(`tests/unit/test_structure.py` holds that), and nothing in this package imports
Streamlit (the import contract in `pyproject.toml`). The layers and the services
behind `DocChat` are described in `docs/architecture.md`.
"""

from rag.answering.context import Retrieval
from rag.answering.prompts import build_prompt
from rag.answering.stream import AnswerStream
from rag.answering.summary import SummaryProgress, SummaryStream
from rag.answering.support import supporting_span
from rag.components.conversations import (
    ChatSettings,
    Conversation,
    ConversationInfo,
    Conversations,
    Turn,
    failed_answer,
    source_label,
)
from rag.components.embeddings import Embedder, load_embedder
from rag.components.generation import LLM, Completion
from rag.components.store import Store
from rag.components.tuned_models import TunedModelInfo
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
    Claim,
    CollectionInfo,
    DocumentInfo,
    Hit,
    IngestResult,
    LoadedDocument,
    Source,
    Upload,
    claims_line,
)
from rag.core.settings import Settings
from rag.engine import DocChat
from rag.evaluation.measures import EvalQuestion, EvalReport
from rag.evaluation.question_set import read_question_set
from rag.evaluation.runs import evaluate
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
from rag.hosting import Host
from rag.ingest.loaders import SUPPORTED_EXTENSIONS, load
from rag.ingest.splitting import split
from rag.jobs import Job, JobFile
from rag.jobs.tune_records import TuneJob
from rag.retrieval.options import SearchOptions
from rag.retrieval.query import clean_query
from rag.services.chats import SUMMARIZE, Chats
from rag.team.access import EDITOR, LOCAL, READER, Sharing, User, check_serving
from rag.team.signin import COOKIE, Identity
from rag.views.markdown import (
    SafeMarkdownStream,
    escape_markdown,
    highlight,
    link_citations,
    marked_answer,
    safe_markdown,
    text_view_html,
)
from rag.views.page_view import PageView
from rag.views.text_view import TextView

__all__ = [
    "COOKIE",
    "EDITOR",
    "LLM",
    "LOCAL",
    "READER",
    "SUMMARIZE",
    "SUPPORTED_EXTENSIONS",
    "VARIANTS",
    "Answer",
    "AnswerStream",
    "Block",
    "ChatSettings",
    "Chats",
    "Chunk",
    "Claim",
    "CollectionExistsError",
    "CollectionInfo",
    "CollectionNotFoundError",
    "Comparison",
    "Completion",
    "ConfigError",
    "Conversation",
    "ConversationInfo",
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
    "Host",
    "Identity",
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
    "Sharing",
    "Source",
    "Store",
    "StoreUnavailableError",
    "SummaryProgress",
    "SummaryStream",
    "TextView",
    "TrainingSet",
    "TuneJob",
    "TunedModelInfo",
    "Turn",
    "UnsupportedFileError",
    "Upload",
    "User",
    "ValidationIssue",
    "ValidationReport",
    "Variant",
    "WrongPasswordError",
    "build_prompt",
    "build_training_set",
    "check_serving",
    "claims_line",
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
    "marked_answer",
    "pairs_jsonl",
    "read_question_set",
    "safe_markdown",
    "select_chunks",
    "source_label",
    "split",
    "supporting_span",
    "text_view_html",
    "validate_examples",
    "validate_pairs",
]
