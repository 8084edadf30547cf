"""The plain, frozen values that flow through DocChat.

Loaders produce a `LoadedDocument`; the splitter turns it into `Chunk`s; the store
returns `Hit`s; retrieval numbers them as `Source`s; generation ends in an `Answer`.
No third-party object (Chroma result, OpenAI event) ever leaves the module that
wraps it: they are converted into these types there.

`to_dict` is one conversion for all of them (`to_plain`: every field, tuples as
lists), and `from_dict` its inverse for flat ones; a model changes it only where its
JSON shape differs (rounded numbers, a flattened chunk).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Mode = Literal["llm", "extractive", "no-answer"]
AnswerKind = Literal["answer", "summary"]  # a summary read the whole document, not top-k
Verdict = Literal["supported", "computed", "not_found", "uncited"]  # a claim check's
PAGED_KINDS = frozenset({"pdf", "image"})  # kinds whose texts are one per page
_D = TypeVar("_D", bound="DataclassInstance")


def to_plain(value: Any) -> Any:
    """JSON-ready values: dataclasses as dicts of all their fields, tuples as lists."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (tuple, list)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    return value


def from_dict(cls: type[_D], data: dict[str, Any], **known: Any) -> _D:
    """A flat dataclass from the fields `data` has (lists back into tuples; other keys
    are ignored); `known` overrides `data`."""
    names = {f.name for f in fields(cls)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
    return cls(**{**values, **known})


class _Plain:
    def to_dict(self) -> dict[str, Any]:
        return dict(to_plain(self))


@dataclass(frozen=True)
class Block:
    """A stretch of a document that no chunk should cross: a page, a section, a function.

    `start`/`end` are character offsets into the text the block lives in:
    `LoadedDocument.texts[page - 1]` for paged documents, `texts[0]` otherwise.
    """

    start: int
    end: int
    page: int | None = None  # 1-based, paged documents (PDF) only
    section: str = ""
    line_start: int | None = None  # 1-based, inclusive; source code only
    line_end: int | None = None
    ocr: bool = False  # the text was read from the page's image by OCR
    anchor: str = ""  # a web page's section: its heading's id ("usage"), for a link to it


@dataclass(frozen=True)
class ReadOptions:
    """How the loaders read a file: `Settings.read_options()` (the defaults are there,
    `settings.DEFAULT_READ`); sent to the extraction worker."""

    ocr: bool  # read pages without a text layer, and images, by OCR
    ocr_languages: tuple[str, ...]
    ocr_dpi: int  # resolution pages are rendered at for OCR
    tables: bool  # PDF tables as Markdown tables
    pdf_text: str  # the engine that reads a PDF page's text first: "pypdf" or "pdfium"


@dataclass(frozen=True)
class LoadedDocument:
    """What a loader extracted from one file, before splitting."""

    doc_id: str  # sha256 hex of the file's bytes
    name: str  # the file name as the user gave it (never used as a path)
    kind: str  # pdf, text, markdown, html, docx, code
    texts: tuple[str, ...]  # one per page for PDFs, one for everything else
    blocks: tuple[Block, ...]
    title: str = ""
    warnings: tuple[str, ...] = ()  # e.g. "page 3: no extractable text (scanned?)"
    # What the document repeats on its pages (running headers and footers, dropped from
    # the page texts): "Apple Inc. | Q3 2022 Form 10-Q". Indexed with every chunk.
    context: str = ""

    @property
    def pages(self) -> int:
        return len(self.texts) if self.kind in PAGED_KINDS else 1

    def text_of(self, block: Block) -> str:
        return self.texts[(block.page or 1) - 1][block.start : block.end]


@dataclass(frozen=True)
class Chunk(_Plain):
    """A piece of a document that is embedded and retrieved as one unit.

    `text` is exactly `texts[page-1][start:end]` of the loaded document (or
    `texts[0][start:end]` for unpaged documents).
    """

    doc_id: str
    file: str
    index: int
    text: str
    start: int
    end: int
    page: int | None = None
    section: str = ""
    line_start: int | None = None
    line_end: int | None = None
    tokens: int = 0
    ocr: bool = False  # read from the page's image by OCR
    context: str = ""  # the document's running header/footer text (`LoadedDocument.context`)
    anchor: str = ""  # a web page's section anchor: the chunk's link is `file#anchor`

    @property
    def id(self) -> str:
        return f"{self.doc_id}:{self.index}"

    @property
    def url(self) -> str:
        """A web page's chunk: the link to its section ("https://x/guide#usage"); else ""."""
        if not self.file.lower().startswith(("http://", "https://")):
            return ""
        return f"{self.file}#{self.anchor}" if self.anchor else self.file

    @property
    def location(self) -> str:
        """Where the chunk is, for people: 'page 3', 'page 4, read by OCR', 'lines 10-24'."""
        if self.page is not None:
            return f"page {self.page}, read by OCR" if self.ocr else f"page {self.page}"
        if self.line_start is not None:
            return f"lines {self.line_start}-{self.line_end}"
        return ""


@dataclass(frozen=True)
class Hit:
    """A chunk found by a search, with its relevance score (higher is better)."""

    chunk: Chunk
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None


@dataclass(frozen=True)
class Source(_Plain):
    """A hit as shown to the model and the user: numbered from 1."""

    n: int
    hit: Hit

    @property
    def chunk(self) -> Chunk:
        return self.hit.chunk

    @classmethod
    def numbered(cls, hits: Sequence[Hit]) -> list[Source]:
        """Hits as sources numbered from 1, in order."""
        return [cls(n=i, hit=h) for i, h in enumerate(hits, start=1)]

    def to_dict(self) -> dict[str, Any]:
        """Flat: the number, the chunk's fields, the score, the chunk's index as `chunk`
        (what `python -m rag show DOC --chunk I` takes) and, for a web page, its `url`."""
        d = {"n": self.n, **self.chunk.to_dict(), "score": round(self.hit.score, 4)}
        link = {"url": self.chunk.url} if self.chunk.url else {}  # a web page's, with its anchor
        return {**d, "chunk": self.chunk.index, **link}


@dataclass(frozen=True)
class DocumentInfo(_Plain):
    """A document as listed in a collection."""

    doc_id: str
    name: str
    kind: str
    pages: int
    chunks: int
    size: int  # bytes of the original file
    added: float  # unix time
    status: str = "ready"  # ready | pending
    warnings: tuple[str, ...] = ()
    title: str = ""  # the document's own title (a web page's <title>), if it has one
    etag: str = ""  # a web page's validators (its name is its URL), for a conditional refresh
    last_modified: str = ""


@dataclass(frozen=True)
class CollectionInfo(_Plain):
    """A named library of documents and the settings its index was built with."""

    name: str
    model: str
    dimension: int
    chunk_tokens: int
    chunk_overlap: int
    documents: int
    chunks: int
    created: float
    size: int = 0  # bytes of the original files of its ready documents


IngestStatus = Literal["indexed", "unchanged", "rejected"]


@dataclass(frozen=True)
class IngestResult(_Plain):
    """The outcome of adding one file to a collection."""

    file: str
    status: IngestStatus
    doc_id: str = ""
    pages: int = 0
    chunks: int = 0
    seconds: float = 0.0
    reason: str = ""  # why it was rejected
    replaced: str = ""  # doc_id of the older version this one replaced
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class Upload:
    """One file of an upload, as `DocChat.ingest_many` takes it."""

    name: str
    data: bytes
    password: str | None = None
    error: str = ""  # set when the file could not even be read: rejected with this reason
    etag: str = ""  # a web page's validators, sent back when it is refreshed
    last_modified: str = ""


@dataclass(frozen=True)
class Claim(_Plain):
    """One sentence of an answer, checked against its sources (`answering/claims.py`)."""

    sentence: str  # as in the answer, citations included
    start: int  # the sentence's offsets in `Answer.text`
    end: int
    verdict: Verdict
    citations: tuple[int, ...] = ()  # the source numbers the sentence cites
    source: int = 0  # the evidence: a source number (0: none)
    span: tuple[int, int] | None = None  # the evidence: a span of that source's chunk text
    operation: str = ""  # computed: the one operation, e.g. "1,577 / 2,394"
    reason: str = ""  # not found or uncited: short, e.g. "12.4 % not in [2]"
    by: str = ""  # what decided: "figures", "names", "words", "llm" or "quote"
    sure: bool = True  # False: the local check could not decide (an LLM judge may)


def claims_line(claims: Sequence[Claim]) -> str:
    """'4 of 5 sentences backed by their sources' (supported or computed)."""
    backed = sum(c.verdict in ("supported", "computed") for c in claims)
    noun = "sentence" if len(claims) == 1 else "sentences"
    return f"{backed} of {len(claims)} {noun} backed by their sources"


@dataclass(frozen=True)
class Answer(_Plain):
    """The result of one question: the text, how it was made, and where it came from."""

    text: str
    mode: Mode
    question: str
    query: str  # the cleaned question that was embedded
    sources: tuple[Source, ...]
    cited: tuple[int, ...]  # source numbers the text cites, in order of first use
    prompt_tokens: int = 0
    left_out: tuple[int, ...] = ()  # hit ranks (1-based) dropped to fit the budget
    timings: dict[str, float] = field(default_factory=dict)
    error: str = ""  # set when generation failed after retrieval succeeded
    kind: AnswerKind = "answer"
    llm_calls: int = 0  # chat-model calls it took (a summary makes one per part, then more)
    completion_tokens: int = 0  # `prompt_tokens` and this: summed over the calls
    claims: tuple[Claim, ...] = ()  # each sentence checked against its sources
    notes: tuple[str, ...] = ()  # for the user, from retrieval: e.g. re-ranking skipped

    def to_dict(self) -> dict[str, Any]:
        """The text under "answer", sources flat, timings rounded."""
        d = super().to_dict()
        return {
            "answer": d.pop("text"),
            **d,
            "sources": [s.to_dict() for s in self.sources],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }
