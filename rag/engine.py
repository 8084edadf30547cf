"""`DocChat`: the one object the CLI, the pages, the API and the benchmarks talk to.

A thin facade: each call passes the acting user to a service of `rag/services/`, all
built by `build_services` (`DocChat.open`) and shared by every user's view;
`as_user(u)` is a view acting for `u`, whose every call on a collection checks the
access rules first. Left out: logic of its own (it belongs in a service).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Unpack

from rag.answering.context import Retrieval
from rag.answering.stream import AnswerStream, Finished
from rag.answering.summary import SummaryProgress, SummaryStream
from rag.components.embeddings import Embedder
from rag.components.generation import LLM
from rag.components.store import Store
from rag.core.models import Answer, Chunk, CollectionInfo, DocumentInfo, Hit, IngestResult, Upload
from rag.core.settings import Settings
from rag.core.text import Message
from rag.finetune.jobs import FineTuneJobs
from rag.ingest.pipeline import UploadProgress
from rag.ingest.stages import IngestProgress
from rag.jobs import Job, Workers
from rag.retrieval.options import SearchOptions, SearchOverrides
from rag.services import Chats, Services, Tuning, Web, build_services
from rag.team.access import LOCAL, Sharing, User
from rag.team.keys import ApiKey
from rag.team.signin import SignIn, UserAdmin
from rag.views.page_view import PageView
from rag.views.text_view import TextView

Span = tuple[int, int]  # a sentence: a span of a chunk's text


class DocChat:
    def __init__(self, services: Services, user: User = LOCAL) -> None:
        self.services = services
        self.settings, self.user = services.settings, user
        s = services
        self._c, self._d, self._a, self._v = s.collections, s.documents, s.answers, s.views
        self.tuning = Tuning(s.tuning, s.uploads, user)  # this user's (services/tuning_view.py)
        self.web = Web(s.documents, user)  # this user's web sources (services/web.py)

    @classmethod
    def open(cls, settings: Settings, *, embedder: Embedder | None = None,
             store: Store | None = None, llm: LLM | None = None) -> DocChat:  # fmt: skip
        """An engine for these settings (`build_services`: tests pass fakes there)."""
        return cls(build_services(settings, embedder=embedder, store=store, llm=llm))

    def as_user(self, user: User) -> DocChat:
        """A view of this engine (same services, models and locks) acting for `user`."""
        return DocChat(self.services, user)

    def close(self) -> None:
        self.services.close()  # its workers; see Services.close

    @property
    def llm(self) -> LLM | None:
        return self.services.llm

    @property
    def signin(self) -> SignIn:
        return self.services.team.signin

    @property
    def embedder(self) -> Embedder:
        return self.services.embedder.get()

    @property
    def embedder_loaded(self) -> bool:
        return self.services.embedder.loaded

    @property
    def chats(self) -> Chats:
        """This user's conversations, and asking in them (`rag.services.chats`)."""
        return self.services.chats.for_user(self.user)

    @property
    def users(self) -> UserAdmin:
        return self.services.team.users(self.user)

    def people(self) -> list[tuple[str, str]]:
        return self.services.team.people()  # (id, name) of every enabled account

    def api_keys(self) -> list[ApiKey]:
        return self.services.team.api_keys(self.user)

    def create_api_key(self, name: str = "") -> tuple[ApiKey, str]:
        return self.services.team.create_api_key(self.user, name)

    def revoke_api_key(self, key_id: str) -> None:
        self.services.team.revoke_api_key(self.user, key_id)

    def may(self, action: str, collection: str | None = None) -> bool:
        return self.services.gate.may(self.user, action, collection)

    def role(self, collection: str | None = None) -> str:
        return self.services.gate.role(self.user, collection)

    def sharing_of(self, collection: str | None = None) -> Sharing:
        return self.services.gate.sharing_of(self.user, collection)

    def share(self, collection: str, sharing: Sharing) -> None:
        self.services.gate.share(self.user, collection, sharing)

    def collections(self) -> list[CollectionInfo]:
        return self._c.readable(self.user)

    def collection_names(self) -> list[str]:
        return self._c.names(self.user)

    def collection(self, name: str | None = None) -> CollectionInfo:
        return self._c.info(self.user, name)

    def exists_elsewhere(self, collection: str) -> bool:
        return self._c.exists_elsewhere(self.user, collection)

    def default_collection(self) -> str:
        return self._c.default_for(self.user)

    def create_collection(self, name: str, *, chunk_tokens: int | None = None,
                          chunk_overlap: int | None = None) -> CollectionInfo:  # fmt: skip
        return self._c.create(self.user, name, chunk_tokens, chunk_overlap)

    def ensure_collection(self, name: str | None = None) -> CollectionInfo:
        return self._c.ensure(self.user, name)

    def rename_collection(self, old: str, new: str) -> None:
        self._c.rename(self.user, old, new)

    def delete_collection(self, name: str) -> None:
        self._c.delete(self.user, name)

    def ingest(self, name: str, data: bytes, *, collection: str | None = None,
               password: str | None = None, progress: IngestProgress | None = None,
               ) -> IngestResult:  # fmt: skip
        return self._d.ingest(self.user, Upload(name, data, password), collection, progress)

    def ingest_many(self, files: Iterable[Upload], *, collection: str | None = None,
                    progress: UploadProgress | None = None,
                    on_result: Callable[[int, IngestResult], None] | None = None,
                    ) -> list[IngestResult]:  # fmt: skip
        return self._d.ingest_many(self.user, files, collection, progress, on_result)

    def ingest_paths(self, paths: Iterable[Path], *, collection: str | None = None,
                     password: str | None = None,
                     on_result: Callable[[IngestResult], None] | None = None,
                     ) -> list[IngestResult]:  # fmt: skip
        return self._d.ingest_paths(self.user, paths, collection, password, on_result)

    def prefetch(self, name: str, data: bytes, *, collection: str | None = None,
                 password: str | None = None) -> None:  # fmt: skip
        self._d.prefetch(self.user, Upload(name, data, password), collection)

    def documents(self, collection: str | None = None) -> list[DocumentInfo]:
        return self._d.listing(self.user, collection)

    def delete_document(self, doc: str, *, collection: str | None = None) -> DocumentInfo:
        return self._d.delete(self.user, doc, collection)

    def chunks(self, doc: str, *, collection: str | None = None) -> list[Chunk]:
        return self._d.chunks(self.user, doc, collection)

    def chunk(self, chunk_id: str, *, collection: str | None = None) -> Chunk:
        return self._d.chunk(self.user, chunk_id, collection)

    def all_chunks(self, collection: str | None = None) -> list[Chunk]:
        return self._d.all_chunks(self.user, collection)

    def original(self, doc: str, *, collection: str | None = None) -> tuple[DocumentInfo, bytes]:
        return self._d.original(self.user, doc, collection)

    def disk_bytes(self) -> int:
        return self._d.disk_bytes()

    def reindex(self, *, collection: str | None = None, chunk_tokens: int, chunk_overlap: int,
                progress: Callable[[str, int, int], None] | None = None,
                ) -> list[IngestResult]:  # fmt: skip
        return self._d.reindex(self.user, collection, chunk_tokens, chunk_overlap, progress)

    def submit_upload(self, uploads: Iterable[Upload | tuple[str, bytes]],
                      collection: str | None = None) -> Job:  # fmt: skip
        files = [u if isinstance(u, Upload) else Upload(u[0], u[1]) for u in uploads]
        return self.services.uploads.submit(self.user, files, collection)

    def start_workers(self) -> Workers | None:
        """This engine's background workers (started once; stopped by `close`)."""
        return self.services.uploads.start_workers()

    def jobs(self) -> list[Job]:
        return self.services.uploads.jobs(self.user)

    def job(self, job_id: str) -> Job:
        return self.services.uploads.job(self.user, job_id)

    def cancel_job(self, job_id: str) -> Job:
        return self.services.uploads.cancel(self.user, job_id)

    def page_view(self, doc: str, page: int, *, chunk: int | None = None,
                  sentence: Span | None = None, collection: str | None = None,
                  ) -> PageView:  # fmt: skip
        return self._v.page(self.user, doc, page, chunk, sentence, collection)

    def text_view(self, chunk: Chunk, *, sentence: Span | None = None,
                  collection: str | None = None) -> TextView:  # fmt: skip
        return self._v.text(self.user, chunk, sentence, collection)

    def search(self, query: str, *, collection: str | None = None,
               options: SearchOptions | None = None, **overrides: Unpack[SearchOverrides],
               ) -> tuple[str, list[Hit]]:  # fmt: skip
        """(cleaned query, hits): `options`, or the settings with these overrides."""
        opts = options or self._a.options(**overrides)
        return self._a.search(self.user, query, collection, opts)

    def retrieve(self, question: str, *, collection: str | None = None,
                 history: Sequence[Message] = (), options: SearchOptions | None = None,
                 **overrides: Unpack[SearchOverrides]) -> Retrieval:  # fmt: skip
        opts = options or self._a.options(**overrides)
        return self._a.retrieve(self.user, question, collection, history, opts)

    def stream(self, retrieval: Retrieval, *, model: str | None = None,
               temperature: float | None = None, on_finish: Finished | None = None,
               ) -> AnswerStream:  # fmt: skip
        return self._a.stream(retrieval, model, temperature, on_finish)

    def whole_document(self, question: str, *, collection: str | None = None,
                       doc_ids: Sequence[str] = ()) -> str | None:  # fmt: skip
        return self.services.summaries.target(self.user, question, collection, doc_ids)

    def summarize(self, doc: str, *, collection: str | None = None, question: str = "",
                  model: str | None = None, temperature: float | None = None,
                  on_progress: Callable[[SummaryProgress], None] | None = None,
                  ) -> SummaryStream:  # fmt: skip
        return self.services.summaries.stream(self.user, doc, collection, question, model=model,
                                              temperature=temperature, on_progress=on_progress)

    def ask(self, question: str, *, collection: str | None = None,
            history: Sequence[Message] = (), **overrides: Unpack[SearchOverrides],
            ) -> Answer:  # fmt: skip
        """Retrieve and answer in one call (raises LLMError if generation fails)."""
        retrieval = self.retrieve(question, collection=collection, history=history, **overrides)
        return self.stream(retrieval).run()

    def fine_tune_jobs(self) -> FineTuneJobs:
        return self.services.finetuning.jobs(self.user)
