"""One `Settings` object, read from the environment and `.streamlit/secrets.toml`.

The environment wins over the secrets file, which wins over the defaults. Tests
build `Settings(...)` directly. Left out on purpose: per-user settings (those live
in the UI's session) and any file format other than TOML.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from rag.core.errors import ConfigError
from rag.core.models import ReadOptions

DEFAULT_MODEL = "all-MiniLM-L6-v2"  # the packaged copy, see embeddings.py
DEFAULT_COLLECTION = "default"
DEFAULT_CHAT_MODEL = "gpt-4o-mini"  # fine-tuning checks a set for it when given no model

# Environment variable for each field (the names users see in docs/settings.md).
ENV_NAMES: dict[str, str] = {
    "data_dir": "DOCCHAT_DATA_DIR",
    "chroma_host": "DOCCHAT_CHROMA_HOST",
    "chroma_port": "DOCCHAT_CHROMA_PORT",
    "chroma_ssl": "DOCCHAT_CHROMA_SSL",
    "embedding_model": "DOCCHAT_EMBEDDING_MODEL",
    "embedding_batch_size": "DOCCHAT_EMBEDDING_BATCH_SIZE",
    "embedding_backend": "DOCCHAT_EMBEDDING_BACKEND",
    "embedding_threads": "DOCCHAT_EMBEDDING_THREADS",
    "embedding_base_url": "DOCCHAT_EMBEDDING_BASE_URL",
    "embedding_api_key": "DOCCHAT_EMBEDDING_API_KEY",
    "embedding_timeout": "DOCCHAT_EMBEDDING_TIMEOUT",
    "embedding_max_retries": "DOCCHAT_EMBEDDING_MAX_RETRIES",
    "embedding_max_tokens": "DOCCHAT_EMBEDDING_MAX_TOKENS",
    "openai_api_key": "OPENAI_API_KEY",
    "openai_base_url": "OPENAI_BASE_URL",
    "chat_model": "DOCCHAT_CHAT_MODEL",
    "temperature": "DOCCHAT_TEMPERATURE",
    "llm_timeout": "DOCCHAT_LLM_TIMEOUT",
    "llm_max_retries": "DOCCHAT_LLM_MAX_RETRIES",
    "collection": "DOCCHAT_COLLECTION",
    "chunk_tokens": "DOCCHAT_CHUNK_TOKENS",
    "chunk_overlap": "DOCCHAT_CHUNK_OVERLAP",
    "top_k": "DOCCHAT_TOP_K",
    "min_score": "DOCCHAT_MIN_SCORE",
    "context_tokens": "DOCCHAT_CONTEXT_TOKENS",
    "summary_seconds": "DOCCHAT_SUMMARY_SECONDS",
    "summary_max_calls": "DOCCHAT_SUMMARY_MAX_CALLS",
    "claim_check": "DOCCHAT_CLAIM_CHECK",
    "hybrid": "DOCCHAT_HYBRID",
    "rerank": "DOCCHAT_RERANK",
    "rerank_base_url": "DOCCHAT_RERANK_BASE_URL",
    "rerank_model": "DOCCHAT_RERANK_MODEL",
    "rerank_api_key": "DOCCHAT_RERANK_API_KEY",
    "rerank_candidates": "DOCCHAT_RERANK_CANDIDATES",
    "rerank_timeout": "DOCCHAT_RERANK_TIMEOUT",
    "tune_epochs": "DOCCHAT_TUNE_EPOCHS",
    "tune_batch_size": "DOCCHAT_TUNE_BATCH_SIZE",
    "tune_max_pairs": "DOCCHAT_TUNE_MAX_PAIRS",
    "tune_passage_tokens": "DOCCHAT_TUNE_PASSAGE_TOKENS",
    "tune_held_out": "DOCCHAT_TUNE_HELD_OUT",
    "dense_weight": "DOCCHAT_DENSE_WEIGHT",
    "max_file_mb": "DOCCHAT_MAX_FILE_MB",
    "max_pages": "DOCCHAT_MAX_PAGES",
    "max_chunks": "DOCCHAT_MAX_CHUNKS",
    "max_upload_chunks": "DOCCHAT_MAX_UPLOAD_CHUNKS",
    "extract_timeout": "DOCCHAT_EXTRACT_TIMEOUT",
    "extract_memory_mb": "DOCCHAT_EXTRACT_MEMORY_MB",
    "ocr": "DOCCHAT_OCR",
    "ocr_languages": "DOCCHAT_OCR_LANGUAGES",
    "ocr_dpi": "DOCCHAT_OCR_DPI",
    "pdf_tables": "DOCCHAT_PDF_TABLES",
    "pdf_text": "DOCCHAT_PDF_TEXT",
    "page_view_dpi": "DOCCHAT_PAGE_VIEW_DPI",
    "page_cache_mb": "DOCCHAT_PAGE_CACHE_MB",
    "auth": "DOCCHAT_AUTH",
    "session_hours": "DOCCHAT_SESSION_HOURS",
    "admin_user": "DOCCHAT_ADMIN_USER",
    "admin_password": "DOCCHAT_ADMIN_PASSWORD",
    "cookie_secret": "DOCCHAT_COOKIE_SECRET",
    "chroma_token": "DOCCHAT_CHROMA_TOKEN",
    "api": "DOCCHAT_API",
    "api_port": "DOCCHAT_API_PORT",
    "redis_url": "DOCCHAT_REDIS_URL",
    "workers": "DOCCHAT_WORKERS",
    "job_lease": "DOCCHAT_JOB_LEASE",
    "database_url": "DOCCHAT_DATABASE_URL",
    "job_keep_days": "DOCCHAT_JOB_KEEP_DAYS",
    "max_question_chars": "DOCCHAT_MAX_QUESTION_CHARS",
    "max_request_files": "DOCCHAT_MAX_REQUEST_FILES",
    "max_request_mb": "DOCCHAT_MAX_REQUEST_MB",
    "max_embed_inputs": "DOCCHAT_MAX_EMBED_INPUTS",
    "max_embed_chars": "DOCCHAT_MAX_EMBED_CHARS",
    "rate_limit": "DOCCHAT_RATE_LIMIT",
    "url_allow": "DOCCHAT_URL_ALLOW",
    "url_timeout": "DOCCHAT_URL_TIMEOUT",
    "url_max_mb": "DOCCHAT_URL_MAX_MB",
    "url_max_redirects": "DOCCHAT_URL_MAX_REDIRECTS",
    "url_max_pages": "DOCCHAT_URL_MAX_PAGES",
    "url_delay": "DOCCHAT_URL_DELAY",
}
PDF_TEXT_ENGINES = ("pypdf", "pdfium")  # the values of `Settings.pdf_text`
CLAIM_CHECKS = ("off", "local", "llm")  # the values of `Settings.claim_check`
RERANKS = ("off", "remote", "llm")  # the values of `Settings.rerank`


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with the defaults DocChat ships."""

    data_dir: Path = Path("data")
    chroma_host: str = ""  # set to use a Chroma server instead of the embedded store
    chroma_port: int = 8000
    chroma_ssl: bool = False
    embedding_model: str = DEFAULT_MODEL  # a sentence-transformers name or a local path
    # Texts per model run; 0: the backend's fastest on this CPU (docs/ingestion.md):
    # 1 for onnx-int8 (no padding, and one text's activations stay in cache), 4 for torch.
    embedding_batch_size: int = 0
    embedding_backend: str = "onnx-int8"  # or torch (see embeddings.py, docs/ingestion.md)
    # onnx-int8 runs this many texts at once, one thread each; 0: one per CPU core.
    embedding_threads: int = 0
    # An OpenAI-compatible /v1/embeddings server (Ollama, vLLM, TEI, Infinity, OpenAI)
    # to embed with instead of the local model; `embedding_model` is then the name the
    # server knows (rag/remote_embeddings.py).
    embedding_base_url: str = ""
    embedding_api_key: str = field(default="", repr=False)  # never in logs or tracebacks
    embedding_timeout: float = 30.0  # seconds for the connection and each response
    embedding_max_retries: int = 2  # retries of a request that failed on the way
    # Remote texts are cut to this many tokens (the packaged tokenizer's) before they
    # are sent: MiniLM's 256-token window less [CLS] and [SEP], what the local model
    # keeps, so a remote MiniLM gets the same text.
    embedding_max_tokens: int = 254
    openai_api_key: str = field(default="", repr=False)  # never in logs or tracebacks
    openai_base_url: str = ""
    chat_model: str = DEFAULT_CHAT_MODEL
    temperature: float = 0.1
    llm_timeout: float = 60.0  # seconds before a request (or first token) is given up
    llm_max_retries: int = 1
    collection: str = DEFAULT_COLLECTION
    chunk_tokens: int = 200  # must fit the model's max sequence length (256 for MiniLM)
    chunk_overlap: int = 40
    top_k: int = 5
    min_score: float = 0.2  # cosine similarity below which a hit is dropped
    context_tokens: int = 3000  # budget for the prompt's sources + history + question
    # A whole-document summary (answering/summary.py) stops reading after this many
    # seconds, and makes at most this many LLM calls (one per part of about
    # `context_tokens`, then the combining ones): no request's cost is unbounded.
    summary_seconds: float = 300.0
    summary_max_calls: int = 100
    # Each sentence of an LLM's answer checked against its sources (answering/claims.py):
    # "off", "local" (figures, names, words and embeddings; no extra LLM call) or "llm"
    # (what the local check cannot decide goes to the LLM as a judge, one call).
    claim_check: str = "local"
    hybrid: bool = True  # dense + BM25 fusion (see retrieval/fusion.py)
    dense_weight: float = 0.4  # 0 = BM25 only, 1 = dense only; chosen on COVID-QA
    # Re-ranking of the fused candidates (retrieval/rerank.py): "off", "remote" (a
    # /rerank endpoint: Text Embeddings Inference, Infinity, Jina, Cohere) or "llm"
    # (the configured LLM grades them in one call). Unmeasured here: no reranker
    # weights ship in any package DocChat can install (docs/retrieval.md).
    rerank: str = "off"
    rerank_base_url: str = ""  # the server whose /rerank is called (remote mode)
    rerank_model: str = ""  # the model name sent to it ("" sends none)
    rerank_api_key: str = field(default="", repr=False)  # never in logs or tracebacks
    rerank_candidates: int = 20  # the fused top candidates sent to be re-ranked
    rerank_timeout: float = 5.0  # seconds before the fused order is kept instead
    # Tuning a collection's embedding model on its own questions (rag/finetune/tuning.py,
    # docs/tuning.md). Passages are cut to `tune_passage_tokens` for training: 128
    # tokens ran a step of 32 triplets in 6 s here against 20 s at the full 256.
    tune_epochs: int = 2
    tune_batch_size: int = 32
    tune_max_pairs: int = 2000  # training pairs kept (a fixed sample beyond): bounds a job
    tune_passage_tokens: int = 128
    tune_held_out: float = 0.3  # the share of documents whose questions only test
    max_file_mb: float = 50.0
    max_pages: int = 2000
    max_chunks: int = 20000  # per document
    max_upload_chunks: int = 50000  # per upload (one drop of files, one CLI ingest)
    extract_timeout: float = 120.0  # seconds one file's extraction may take
    extract_memory_mb: float = 2048.0  # memory one PDF/Word/HTML file's parser may take
    ocr: bool = True  # read pages without a text layer, and image files, by OCR
    ocr_languages: str = "en"  # comma-separated; the packaged model reads en and ch
    # Pages are rendered at this resolution for OCR. benchmarks/ocr.py, 6 English pages
    # (results/ocr.json, quiet machine): CER 2.3 % at 100 dpi (but 32 % on small type),
    # 7.2 % at 150, 5.9 % at 200, 2.7 % at 250, 3.4 % at 300; 2.7 s per page at 250 and
    # 300. RapidOCR reduces pages to 2000 px on the longer side (about 180 dpi for
    # Letter), so the curve is a matter of which lines its detector finds after that
    # resize, not of detail: it is not monotonic. 250 is best on those 10 pages; 300
    # was kept for reading text on an image page of imagemagick-images.pdf that 250
    # did not, but that text was a "1" read from a smiley's nose (a page now too
    # small for OCR at all, pdf_page.MIN_OCR_POINTS). Both are within the 3 % target.
    ocr_dpi: int = 300
    # PDF tables as Markdown tables. Off by default: on the SEC 10-Q set the Markdown
    # tables scored below pypdf's rows of text on every measure (docs/retrieval.md).
    pdf_tables: bool = False
    # Which engine reads a PDF page's text layer first: "pypdf" (the other is the
    # fallback) or "pdfium". pdfium reads the SEC 10-Q filings' text about 10x faster
    # (pypdf: 1.3 s per MB of content stream, 93 s of the 1,037 pages) and its text
    # ranked slightly better there; pypdf stays the default reader (docs/retrieval.md).
    pdf_text: str = "pypdf"
    # A source's page is shown at this resolution: 110 dpi is a Letter page 935 px wide,
    # the chat column's width on a laptop screen, with 8-point type still legible.
    page_view_dpi: int = 110
    page_cache_mb: float = 200.0  # rendered source pages kept on disk (oldest dropped)
    # Who may sign in: "" (unset: single-user mode, on 127.0.0.1 only), "none" (single-
    # user behind an authenticating proxy), "accounts", "oidc" or "accounts,oidc".
    auth: str = ""
    session_hours: float = 12.0  # a sign-in lasts this long
    # The first administrator, made once when accounts are on and none exists (for
    # OIDC: the e-mail that is an administrator).
    admin_user: str = ""
    admin_password: str = field(default="", repr=False)
    cookie_secret: str = field(default="", repr=False)  # signs session cookies
    chroma_token: str = field(default="", repr=False)  # a Chroma server's auth token
    api: bool = True  # `make run` also serves the HTTP API (rag/api), on api_port
    api_port: int = 8502
    # Background jobs (rag/jobs.py): the queue is SQLite at <data_dir>/jobs.db, or this
    # Redis server when set (workers on other machines then share it).
    redis_url: str = field(default="", repr=False)  # may hold a password
    # Consumer threads the app process runs. 1: one upload already keeps both cores of
    # the machine busy (embedding in the model process, extraction in worker
    # processes reading ahead), so a second job in parallel only makes both slower;
    # scale out with `python -m rag worker` on other machines instead. 0: no consumer;
    # a job runs in the process that submits it, before the submit returns (the tests).
    workers: int = 1
    # Seconds a running job's heartbeat lasts: a job not heard from for this long (its
    # worker was killed) is put back on the queue for another worker.
    job_lease: float = 30.0
    # The record store (rag/records): SQLite at <data_dir>/docchat.db when empty, or a
    # server, e.g. postgresql+psycopg://user:password@host/docchat (docs/state.md).
    database_url: str = field(default="", repr=False)  # may hold a password
    job_keep_days: float = 30.0  # upload job records older than this are pruned
    # Bounds on one request's cost (docs/state.md). 8,000 characters is ~2,000 tokens:
    # far more than any question, far less than what would slow the question's steps.
    max_question_chars: int = 8000  # a question or chat message
    max_request_files: int = 100  # files in one upload request (API)
    max_request_mb: float = 200.0  # one upload request's body (API)
    max_embed_inputs: int = 256  # texts in one /v1/embeddings request
    max_embed_chars: int = 200_000  # their characters together
    # Requests per API key (or per client address when sign-in is off), in the `limits`
    # library's notation ("120/minute"; "off" turns the limit off).
    rate_limit: str = "120/minute"
    # Web sources (rag/components/web_fetch.py, docs/web.md). Addresses that are not
    # public (loopback, private, link-local, ...) are refused unless listed here: a comma
    # list of CIDRs, addresses or host names (an intranet; "127.0.0.1/32" in the tests).
    url_allow: str = ""
    url_timeout: float = 15.0  # seconds to connect, and for each read of a response
    url_max_mb: float = 20.0  # the largest response kept (counted as it arrives)
    url_max_redirects: int = 5  # RFC 9309 asks crawlers to follow at least 5 for robots.txt
    url_max_pages: int = 100  # pages one crawl (a sitemap, a feed, a list) fetches at most
    url_delay: float = 1.0  # seconds between the starts of two requests to one host

    @property
    def llm_configured(self) -> bool:
        """An LLM is used when a key or an OpenAI-compatible base URL is set."""
        return bool(self.openai_api_key or self.openai_base_url)

    @property
    def remote_embedding(self) -> bool:
        """Embedding goes to an OpenAI-compatible server, not the local model."""
        return bool(self.embedding_base_url)

    @property
    def server_mode(self) -> bool:
        return bool(self.chroma_host)

    def read_options(self) -> ReadOptions:
        """What the loaders need to know of the settings."""
        languages = tuple(x.strip() for x in self.ocr_languages.split(",") if x.strip())
        if self.pdf_text not in PDF_TEXT_ENGINES:
            raise ConfigError(
                f"{ENV_NAMES['pdf_text']}={self.pdf_text!r}: expected one of "
                + ", ".join(PDF_TEXT_ENGINES)
            )
        return ReadOptions(ocr=self.ocr, ocr_languages=languages, ocr_dpi=self.ocr_dpi,
                           tables=self.pdf_tables, pdf_text=self.pdf_text)  # fmt: skip

    def claim_check_mode(self) -> str:
        """`claim_check`, checked: "off", "local" or "llm" (ConfigError otherwise)."""
        mode = self.claim_check.strip().lower()
        if mode not in CLAIM_CHECKS:
            raise ConfigError(
                f"{ENV_NAMES['claim_check']}={self.claim_check!r}: expected one of "
                + ", ".join(CLAIM_CHECKS)
            )
        return mode

    def rerank_mode(self) -> str:
        """`rerank`, checked: "off", "remote" or "llm" (ConfigError otherwise)."""
        mode = self.rerank.strip().lower()
        if mode not in RERANKS:
            raise ConfigError(
                f"{ENV_NAMES['rerank']}={self.rerank!r}: expected one of " + ", ".join(RERANKS)
            )
        return mode

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def without_llm(self) -> Settings:
        """These settings with no LLM: answers are extractive (evaluations, benchmarks)."""
        return replace(self, openai_api_key="", openai_base_url="")

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        secrets_path: Path | None = Path(".streamlit/secrets.toml"),
    ) -> Settings:
        """Read settings: environment first, then the secrets file, then defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, str] = {}
        if secrets_path is not None and secrets_path.is_file():
            try:
                secrets = tomllib.loads(secrets_path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as e:
                raise ConfigError(f"Cannot read {secrets_path}: {e}") from None
            for key, value in secrets.items():
                if not isinstance(value, dict):
                    values[key.upper()] = str(value)
        values.update({k: v for k, v in env.items() if k in ENV_NAMES.values()})
        kwargs: dict[str, object] = {}
        for f in fields(cls):
            raw = values.get(ENV_NAMES[f.name])
            if raw is None or raw == "":
                continue
            kwargs[f.name] = _parse(f.name, raw, type(getattr(cls(), f.name)))
        return cls(**kwargs)  # type: ignore[arg-type]


def _parse(name: str, raw: str, kind: type) -> object:
    try:
        if kind is bool:
            if raw.strip().lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.strip().lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if issubclass(kind, Path):
            return Path(raw).expanduser()
        return raw
    except ValueError:
        raise ConfigError(f"{ENV_NAMES[name]}={raw!r} is not a valid {kind.__name__}") from None


DEFAULT_READ = Settings().read_options()  # what `load` and `extract` use when not told
