"""Questions about a whole document: which document a question means, and its summary
(or the list it asks for) streamed from every chunk, not the top-k.

`target` decides whether a question is about a whole document at all
(`answering/whole.py`) and which one: the one document in focus; else a document the
question names; else the collection's only document; else the document of the best
search hit. `stream` reads the document's chunks (read access checked by the Gate,
as `DocumentService.chunks` does) and returns a `SummaryStream` bounded by the
settings (`context_tokens` per call, `summary_seconds`, `summary_max_calls`).

Left out: saving the turn (the chats service does, through `on_finish`), caching a
document's summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag.answering.stream import Finished
from rag.answering.summary import Progress, SummaryStream
from rag.answering.whole import named_document, whole_document_request
from rag.components.generation import LLM
from rag.core.settings import Settings
from rag.services.answers import AnswerService, check_length
from rag.services.documents import DocumentService
from rag.team.access import User


@dataclass(frozen=True)
class SummaryService:
    settings: Settings
    documents: DocumentService
    answers: AnswerService
    llm: LLM | None

    def target(
        self, user: User, question: str, collection: str | None, doc_ids: Sequence[str] = ()
    ) -> str | None:
        """The id of the document a whole-document question is about; None when the
        question is not one (or the collection has no document to read)."""
        check_length(question, self.settings.max_question_chars)
        request = whole_document_request(question)
        if request is None:
            return None
        if len(doc_ids) == 1:
            return doc_ids[0]
        docs = [d for d in self.documents.listing(user, collection) if d.status == "ready"]
        if doc_ids:
            docs = [d for d in docs if d.doc_id in doc_ids]
        named = named_document(question, [(d.doc_id, d.name) for d in docs])
        if named is not None:
            return named
        if len(docs) <= 1:
            return docs[0].doc_id if docs else None
        # Any document is a better reading than none: no relevance threshold here.
        options = self.answers.options(top_k=1, min_score=0.0, doc_ids=doc_ids or None)
        _, hits = self.answers.search(user, request.topic or question, collection, options)
        return hits[0].chunk.doc_id if hits else None

    def stream(
        self,
        user: User,
        doc: str,
        collection: str | None,
        question: str = "",
        *,
        model: str | None = None,
        temperature: float | None = None,
        on_progress: Progress | None = None,
        on_finish: Finished | None = None,
    ) -> SummaryStream:
        """The document's summary (or the list `question` asks for), streamed."""
        check_length(question, self.settings.max_question_chars)
        chunks = self.documents.chunks(user, doc, collection)  # read access checked
        s = self.settings
        return SummaryStream(
            chunks,
            llm=self.llm,
            budget=s.context_tokens,
            seconds=s.summary_seconds,
            max_calls=s.summary_max_calls,
            name=chunks[0].file if chunks else "",
            question=question.strip(),
            model=model,
            temperature=s.temperature if temperature is None else temperature,
            on_progress=on_progress,
            on_finish=on_finish,
            embedder=self.answers.embedder.get() if self.llm is not None else None,
            claim_check=s.claim_check_mode(),
        )
