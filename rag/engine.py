"""`DocChat`: the one object the CLI, the pages and the benchmarks talk to.

It owns the settings, the store, the embedder (loaded on first use, so a page can
render before the model is in memory), the LLM client (None in extractive mode) and
the saved conversations (which follow a collection's rename and deletion), and wires
the modules together. It holds no state of its own beyond that,
so one instance can serve many threads (Streamlit sessions); writes to a
collection are serialized by a per-collection lock.

One engine acts for one user (`user`, `LOCAL` in single-user mode); `as_user(u)` is
the same engine (store, models, locks) acting for `u`. Every call on a collection
checks `access.check` first and raises `AccessDeniedError` when the rule says no;
`collections()` lists only those the user may read. A collection made by a signed-in
user is theirs (`sharing.SharingStore`); `share` changes who else may use it.

Each user has their own conversations; `signin` is the front door (sessions, OIDC
identities) and `users` the administrators' account management.

Fine-tuning jobs are per user too (sets and evaluation runs live in the browser
session that made them).

Uploads can run in the background (`submit_upload`): a job on the queue of
`rag.jobs.queue`, run by a worker as the user who submitted it; `jobs()` are the acting
user's (an administrator's: everyone's).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Unpack, cast

from rag.answering.stream import AnswerStream, Finished, Retrieval, standalone_question
from rag.components.conversations import Conversations, failed_answer
from rag.components.embeddings import Embedder
from rag.components.generation import LLM, open_llm
from rag.components.lexical import Lexical
from rag.components.remote_embeddings import open_embedder
from rag.components.store import Store
from rag.core.errors import (
    AccessDeniedError,
    CollectionExistsError,
    ConfigError,
    DocumentNotFoundError,
    JobNotFoundError,
    RagError,
)
from rag.core.files import tree_bytes
from rag.core.models import Answer, Chunk, CollectionInfo, DocumentInfo, Hit, IngestResult, Upload
from rag.core.settings import Settings
from rag.core.text import Message
from rag.finetune.jobs import FineTuneJobs
from rag.ingest.pipeline import prefetch_file, read_paths, rebuild, run_upload
from rag.ingest.splitting import check_sizes
from rag.ingest.stages import IngestProgress, Prepared, commit, prepare
from rag.jobs.queue import Job, JobQueue
from rag.retrieval.query import clean_query
from rag.retrieval.search import SearchOptions, SearchOverrides, retrieve, search
from rag.team.access import LOCAL, Sharing, User, allowed, check, role_of
from rag.team.keys import ApiKey, open_keys
from rag.team.sharing import SharingStore
from rag.team.signin import SignIn, UserAdmin, open_accounts
from rag.views.page_view import PageView, PageViews, TextView, text_view

_UNSET = object()


class DocChat:
    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        store: Store | None = None,
        llm: LLM | object | None = _UNSET,
        user: User = LOCAL,
    ) -> None:
        self.settings = settings
        self.user = user
        # Loaded on first use and shared by every `as_user` view of this engine.
        self._lazy: dict[str, object] = {"embedder": embedder}
        self._embedder_lock = threading.Lock()
        self.store = store if store is not None else Store(settings)
        self.lexical = Lexical(self.store, Path(settings.data_dir) / "lexical")
        self.conversations = Conversations(settings.data_dir)
        self.llm: LLM | None = open_llm(settings) if llm is _UNSET else cast(LLM | None, llm)
        self._write_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.sharing = SharingStore(Path(settings.data_dir) / "sharing.json")
        self.signin = SignIn(settings, open_accounts(settings))
        self.keys = open_keys(settings.data_dir)
        options = settings.read_options()
        self.page_views = PageViews(
            Path(settings.data_dir) / "page_views",
            max_bytes=int(settings.page_cache_mb * 1_000_000),
            dpi=settings.page_view_dpi,
            ocr_dpi=options.ocr_dpi,
            ocr_languages=options.ocr_languages,
        )

    # -- resources ----------------------------------------------------------------

    def as_user(self, user: User) -> DocChat:
        """This engine (same store, models and locks) acting for `user`."""
        view = copy.copy(self)
        view.user = user
        view.conversations = self.conversations.for_user(view._owner)
        return view

    @property
    def _owner(self) -> str:
        """Whose conversations and jobs these are ("" is single-user mode's user)."""
        return "" if self.user == LOCAL else self.user.name

    @property
    def users(self) -> UserAdmin:
        """Account management, for administrators (`AccessDeniedError` for others)."""
        return UserAdmin(self.signin.accounts, self.user)

    @property
    def embedder(self) -> Embedder:
        with self._embedder_lock:
            if self._lazy["embedder"] is None:
                # The local model, or a remote server's when the settings name one.
                self._lazy["embedder"] = open_embedder(self.settings)
            return cast(Embedder, self._lazy["embedder"])

    @property
    def embedder_loaded(self) -> bool:
        return self._lazy["embedder"] is not None

    def _name(self, collection: str | None) -> str:
        """The collection meant: the one given, or the settings' default."""
        return collection or self.settings.collection

    def _open(self, collection: str | None, action: str) -> str:
        """The collection meant, once the acting user may do `action` with it."""
        name = self._name(collection)
        check(self.user, action, self.sharing.of(name), name)
        return name

    def may(self, action: str, collection: str | None = None) -> bool:
        """Whether the acting user may do `action` with the collection (pages hide
        what this says no to; the calls check it again)."""
        return allowed(self.user, action, self.sharing.of(self._name(collection)))

    def role(self, collection: str | None = None) -> str:
        """The acting user's role on the collection ("" when none)."""
        return role_of(self.user, self.sharing.of(self._name(collection))) or ""

    def sharing_of(self, collection: str | None = None) -> Sharing:
        return self.sharing.of(self._open(collection, "read"))

    # -- API keys (the acting user's own) ---------------------------------------------------

    def api_keys(self) -> list[ApiKey]:
        return self.keys.list(self.user.name)

    def create_api_key(self, name: str = "") -> tuple[ApiKey, str]:
        """A new key for the acting user: its record and the key, shown once."""
        return self.keys.create(self.user.name, name)

    def revoke_api_key(self, key_id: str) -> None:
        self.keys.revoke(key_id, self.user.name)

    def exists_elsewhere(self, collection: str) -> bool:
        """Whether a collection of that name exists that the acting user may not read
        (a name is unique across users)."""
        return self.store.has_collection(collection) and not self.may("read", collection)

    def user_names(self) -> list[str]:
        """Who a collection can be shared with: every enabled account."""
        return [a.name for a in self.signin.accounts.list() if not a.disabled]

    def share(self, collection: str, sharing: Sharing) -> None:
        """Set who owns the collection and who else may use it (its owner or an admin)."""
        self.sharing.set(self._open(collection, "share"), sharing)

    def _write_lock(self, collection: str) -> threading.Lock:
        with self._guard:
            return self._write_locks.setdefault(collection, threading.Lock())

    # -- collections ---------------------------------------------------------------

    def collections(self) -> list[CollectionInfo]:
        """The collections the acting user may read."""
        return [c for c in self.store.list_collections() if self.may("read", c.name)]

    def collection_names(self) -> list[str]:
        return [n for n in self.store.collection_names() if self.may("read", n)]

    def collection(self, name: str | None = None) -> CollectionInfo:
        return self.store.collection_info(self._open(name, "read"))

    def create_collection(
        self, name: str, *, chunk_tokens: int | None = None, chunk_overlap: int | None = None
    ) -> CollectionInfo:
        size = chunk_tokens if chunk_tokens is not None else self.settings.chunk_tokens
        overlap = chunk_overlap if chunk_overlap is not None else self.settings.chunk_overlap
        check_sizes(size, overlap, self.embedder.max_tokens)
        e = self.embedder
        info = self.store.create_collection(
            name, model=e.name, dimension=e.dimension, chunk_tokens=size, chunk_overlap=overlap
        )
        if self.user != LOCAL:  # a signed-in user's collection is theirs
            self.sharing.set(info.name, Sharing(self.user.name))
        return info

    def ensure_collection(self, name: str | None = None) -> CollectionInfo:
        name = self._name(name)
        with self._write_lock(f"create:{name}"):
            if not self.store.has_collection(name):
                try:
                    return self.create_collection(name)
                except CollectionExistsError:
                    pass  # another process (a worker) made it meanwhile: use that one
            return self.store.collection_info(self._open(name, "upload"))

    def rename_collection(self, old: str, new: str) -> None:
        self._open(old, "rename")
        # Not while a write to either name is under way (locks taken in a fixed order).
        with contextlib.ExitStack() as held:
            for name in sorted({old, new}):
                held.enter_context(self._write_lock(name))
            self.store.rename_collection(old, new)
            self.sharing.rename(old, new.strip())
            self.conversations.rename(old, new.strip())

    def delete_collection(self, name: str) -> None:
        self._open(name, "delete_collection")
        with self._write_lock(name):
            key = self.store.collection_key(name)
            docs = self.store.documents(name)
            self.store.delete_collection(name)
            for d in docs:
                self.page_views.drop(d.doc_id)
            self.lexical.drop(key)
            self.sharing.drop(name)
            self.conversations.delete(name)

    # -- documents ---------------------------------------------------------------------

    def ingest(
        self,
        name: str,
        data: bytes,
        *,
        collection: str | None = None,
        password: str | None = None,
        progress: IngestProgress | None = None,
    ) -> IngestResult:
        """Add one file; bad input comes back as a `rejected` result.

        Store failures raise `RagError` (nothing is left half-written).
        """
        info = self.ensure_collection(collection)
        ready = self._prepare(info, Upload(name, data, password), progress, None)
        if isinstance(ready, IngestResult):
            return ready
        return self._commit(ready, info.name, progress)

    def _prepare(
        self, info: CollectionInfo, f: Upload, report: IngestProgress | None, left: int | None
    ) -> Prepared | IngestResult:
        return prepare(
            f.name,
            f.data,
            store=self.store,
            embedder=self.embedder,
            collection=info,
            settings=self.settings,
            password=f.password,
            progress=report,
            chunks_left=left,
        )

    def _commit(
        self, ready: Prepared, collection: str, progress: IngestProgress | None = None
    ) -> IngestResult:
        # Embedding runs unlocked (sessions may prepare the same file at once); writes
        # to one collection are one at a time, and `commit` re-checks "unchanged".
        with self._write_lock(collection):
            result = commit(ready, store=self.store, collection=collection, progress=progress)
            if result.status == "indexed":
                self.lexical.sync(collection)
            return result

    def ingest_many(
        self,
        files: Iterable[Upload],
        *,
        collection: str | None = None,
        progress: Callable[[int, str, int, int], None] | None = None,
        on_result: Callable[[int, IngestResult], None] | None = None,
    ) -> list[IngestResult]:
        """Add the files of one upload, one result each, in order.

        A pipeline (`ingest/pipeline.py`): while file i is written to the store (in a
        writer thread), the files after it are read, split and embedded, two at a
        time. `files` is consumed lazily, so a caller can read files as they are
        needed. `progress(i, stage, done, total)` reports the stages of file i up to
        embedding; `on_result(i, result)` is called in file order, from the calling
        thread (Streamlit widgets can be updated there). One upload stays within
        `settings.max_upload_chunks`. A store failure rejects the file it hit, with
        the reason, and the rest go on.
        """
        info = self.ensure_collection(collection)
        return run_upload(
            files,
            prepare=functools.partial(self._prepare, info),
            commit=functools.partial(self._commit, collection=info.name),
            prefetch_next=lambda f: self.prefetch(
                f.name, f.data, collection=info.name, password=f.password
            ),
            max_chunks=self.settings.max_upload_chunks,
            progress=progress,
            on_result=on_result,
        )

    def ingest_paths(
        self,
        paths: Iterable[Path],
        *,
        collection: str | None = None,
        password: str | None = None,
        on_result: Callable[[IngestResult], None] | None = None,
    ) -> list[IngestResult]:
        """Files, and the files inside folders (recursively, sorted), one result each."""
        return self.ingest_many(
            read_paths(paths, password),
            collection=collection,
            on_result=(lambda _, r: on_result(r)) if on_result is not None else None,
        )

    def prefetch(
        self, name: str, data: bytes, *, collection: str | None = None, password: str | None = None
    ) -> None:
        """Start reading the next file of an upload while the current one is embedded.

        A later `ingest` of the same file takes the result. Files already in the
        collection are not read (their ingest is a no-op); errors wait for `ingest`.
        """
        target = self._name(collection)
        if self.store.has_collection(target) and not self.may("upload", target):
            return  # `ingest` will say so
        prefetch_file(name, data, self.store, target, self.settings, password)

    # -- background uploads (rag/jobs.py) -------------------------------------------------------

    @property
    def job_queue(self) -> JobQueue:
        """The job queue, opened on first use and shared by every `as_user` view."""
        with self._guard:
            queue = self._lazy.get("job_queue")
            if not isinstance(queue, JobQueue):
                queue = JobQueue(self.settings, runner=self)
                self._lazy["job_queue"] = queue
            return queue

    def submit_upload(
        self, uploads: Iterable[Upload | tuple[str, bytes]], collection: str | None = None
    ) -> Job:
        """The files as a background job into the collection (made by the job if new).

        Refused at once, as the Upload page refuses: a name someone else holds, and a
        collection the user may read but not add to.
        """
        name = self._name(collection)
        if self.store.has_collection(name):
            if not self.may("read", name):
                raise AccessDeniedError(f"The name {name!r} is taken: choose another.")
            if not self.may("upload", name):
                raise AccessDeniedError(
                    f"You may read {name!r} but not add to it: ask its owner for the editor "
                    "role, or upload into a collection of your own."
                )
        files = [u if isinstance(u, Upload) else Upload(u[0], u[1]) for u in uploads]
        return self.job_queue.submit(self.user, name, files)

    def jobs(self) -> list[Job]:
        """The acting user's jobs (an administrator's: every job), newest first."""
        return self.job_queue.jobs(None if self.user.admin else self.user.name)

    def job(self, job_id: str) -> Job:
        """One of the acting user's jobs (`JobNotFoundError` for anyone else's)."""
        job = self.job_queue.job(job_id)
        if not self.user.admin and job.user != self.user.name:
            raise JobNotFoundError(f"No job {job_id!r}.")
        return job

    def cancel_job(self, job_id: str) -> Job:
        self.job(job_id)  # the caller's, or not found
        return self.job_queue.cancel(job_id)

    def documents(self, collection: str | None = None) -> list[DocumentInfo]:
        return self.store.documents(self._open(collection, "read"))

    def delete_document(self, doc: str, *, collection: str | None = None) -> DocumentInfo:
        name = self._open(collection, "delete_document")
        with self._write_lock(name):
            info = self.store.delete_document(name, doc)
            self.lexical.sync(name)
            self.page_views.drop(info.doc_id)
            return info

    def chunks(self, doc: str, *, collection: str | None = None) -> list[Chunk]:
        name = self._open(collection, "read")
        info = self.store.document(name, doc)
        return self.store.chunks_of(name, info.doc_id)

    def original(self, doc: str, *, collection: str | None = None) -> tuple[DocumentInfo, bytes]:
        info = self.store.document(self._open(collection, "read"), doc)
        return info, self.store.original(info.doc_id)

    def page_view(
        self,
        doc: str,
        page: int,
        *,
        chunk: int | None = None,
        sentence: tuple[int, int] | None = None,
        collection: str | None = None,
    ) -> PageView:
        """Page `page` of a PDF or image document, rendered, with chunk `chunk` (its
        index) marked and `sentence` (a span of the chunk's text) marked stronger."""
        name = self._open(collection, "read")
        info = self.store.document(name, doc)
        if info.kind not in ("pdf", "image"):
            raise DocumentNotFoundError(f"{info.name} has no pages to show.")
        chunks = self.store.chunks_of(name, info.doc_id)
        marked = None
        if chunk is not None:
            marked = next((c for c in chunks if c.index == chunk), None)
            if marked is None:
                raise DocumentNotFoundError(f"{info.name} has no chunk {chunk}.")
            page = marked.page or page
        on_page = [c for c in chunks if c.page == page]
        data = self.store.original(info.doc_id)
        return self.page_views.view(
            info.doc_id, data, info.kind, info.pages, page, on_page, marked, sentence
        )

    def text_view(
        self, chunk: Chunk, *, sentence: tuple[int, int] | None = None,
        collection: str | None = None,
    ) -> TextView:
        """A chunk of a document without pages, in the text around it."""
        return text_view(self.store.chunks_of(self._open(collection, "read"), chunk.doc_id), chunk,
                         sentence)  # fmt: skip

    def disk_bytes(self) -> int:
        """Bytes on disk under the data dir: the local index, the originals, the rest."""
        return tree_bytes(Path(self.settings.data_dir))

    def reindex(
        self,
        *,
        collection: str | None = None,
        chunk_tokens: int,
        chunk_overlap: int,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> list[IngestResult]:
        """Rebuild a collection with new chunk settings (or the current embedding model),
        from the stored originals; the old index answers until the new one is swapped in."""
        name = self._open(collection, "reindex")
        check_sizes(chunk_tokens, chunk_overlap, self.embedder.max_tokens)
        # Writes to the collection wait until the swap: an upload meanwhile would be
        # missing from the snapshot and lost with the old index.
        with self._write_lock(name):
            return rebuild(self, name, chunk_tokens, chunk_overlap, progress)

    # -- retrieval and answers ----------------------------------------------------------------

    def search_options(self, **overrides: Unpack[SearchOverrides]) -> SearchOptions:
        """The settings' search options with these overrides (`SearchOptions.from_settings`)."""
        return SearchOptions.from_settings(self.settings, **overrides)

    def search(
        self,
        query: str,
        *,
        collection: str | None = None,
        options: SearchOptions | None = None,
        **overrides: Unpack[SearchOverrides],
    ) -> tuple[str, list[Hit]]:
        """(cleaned query, hits). `options`, or the settings with `overrides` of top_k,
        min_score, doc_ids, hybrid, dense_weight."""
        cleaned = clean_query(query)
        hits = search(
            cleaned,
            store=self.store,
            embedder=self.embedder,
            collection=self.collection(collection),
            options=options or self.search_options(**overrides),
            lexical=self.lexical,
            question=query,
        )
        return cleaned, hits

    def retrieve(
        self,
        question: str,
        *,
        collection: str | None = None,
        history: Sequence[Message] = (),
        options: SearchOptions | None = None,
        **overrides: Unpack[SearchOverrides],
    ) -> Retrieval:
        """The retrieval stage for a question (overrides as in `search`)."""
        question = question.strip()
        if not question:
            raise RagError("Please type a question.")
        search_text = standalone_question(self.llm, question, history)
        return retrieve(
            question,
            store=self.store,
            embedder=self.embedder,
            collection=self.collection(collection),
            options=options or self.search_options(**overrides),
            budget=self.settings.context_tokens,
            history=history,
            search_text=search_text,
            lexical=self.lexical,
        )

    def chat(
        self,
        retrieval: Retrieval,
        *,
        collection: str | None = None,
        model: str | None = None,
        temperature: float | None = None,
    ) -> AnswerStream:
        """An answer stream whose turn is saved to the collection's conversation when the
        stream ends: complete, failed, or stopped (use it as a context manager)."""
        name = self._open(collection, "chat")

        def save(answer: Answer, stopped: bool) -> None:
            self.conversations.append(name, retrieval.question, answer, stopped=stopped)

        return self.stream(retrieval, model=model, temperature=temperature, on_finish=save)

    def chat_failed(self, question: str, error: str, *, collection: str | None = None) -> Answer:
        """Save a question whose retrieval failed, with the reason; returns its answer."""
        answer = failed_answer(question, error)
        self.conversations.append(self._open(collection, "chat"), question, answer)
        return answer

    def stream(
        self,
        retrieval: Retrieval,
        *,
        model: str | None = None,
        temperature: float | None = None,
        llm: LLM | object | None = _UNSET,
        on_finish: Finished | None = None,
    ) -> AnswerStream:
        return AnswerStream(
            retrieval,
            llm=self.llm if llm is _UNSET else llm,  # type: ignore[arg-type]
            embedder=self.embedder,
            model=model,
            temperature=self.settings.temperature if temperature is None else temperature,
            on_finish=on_finish,
        )

    def ask(self, question: str, **kwargs: object) -> Answer:
        """Retrieve and answer in one call (raises LLMError if generation fails)."""
        return self.stream(self.retrieve(question, **kwargs)).run()  # type: ignore[arg-type]

    # -- fine-tuning ---

    def fine_tune_jobs(self) -> FineTuneJobs:
        """The acting user's fine-tuning jobs on the LLM's server (built once per user,
        shared by every `as_user` view)."""
        llm = self.llm
        if llm is None:
            raise ConfigError("Fine-tuning needs an LLM: set OPENAI_API_KEY or OPENAI_BASE_URL.")
        owner = self._owner
        with self._guard:  # sessions opening the page at once get the same one
            jobs = self._lazy.get(f"jobs:{owner}")
            if not isinstance(jobs, FineTuneJobs):
                jobs = FineTuneJobs(llm, self.settings.data_dir, owner)
                self._lazy[f"jobs:{owner}"] = jobs
            return jobs

    def chunk(self, chunk_id: str, *, collection: str | None = None) -> Chunk:
        """One chunk by its id (`doc_id:index`), e.g. the source of a Q&A pair."""
        name = self._open(collection, "read")
        found, _ = self.store.chunks_by_id(name, [chunk_id])
        if not found:
            raise DocumentNotFoundError(
                f"{name} has no chunk {chunk_id}: its document was deleted or re-indexed."
            )
        return found[0]

    def all_chunks(self, collection: str | None = None) -> list[Chunk]:
        """Every chunk of the collection's ready documents (what fine-tuning sets use)."""
        return list(self.store.all_chunks(self._open(collection, "read")))

