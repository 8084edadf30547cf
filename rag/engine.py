"""`DocChat`: the one object the CLI, the pages and the benchmarks talk to.

It owns the settings, the store, the embedder (loaded on first use, so a page can
render before the model is in memory), the LLM client (None in extractive mode) and
the saved conversations (which follow a collection's rename and deletion), and wires
the modules together. It holds no state of its own beyond that,
so one instance can serve many threads (Streamlit sessions); writes to a
collection are serialized by a per-collection lock.

Left out: per-user permissions; every user of one instance sees every collection.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from .answering import AnswerStream, Retrieval
from .conversations import Conversations
from .embeddings import Embedder, load_embedder
from .errors import ConfigError, DocumentNotFoundError, RagError
from .extract import prefetch
from .finetune.jobs import FineTuneJobs
from .generation import LLM
from .ingest import IngestProgress, Prepared, commit, prepare
from .lexical import Lexical
from .models import Answer, Chunk, CollectionInfo, DocumentInfo, Hit, IngestResult, Upload
from .prompts import Message, standalone_question_messages
from .query import clean_query
from .retrieval import retrieve, search
from .settings import Settings
from .splitting import check_sizes
from .store import Store

_UNSET = object()


class DocChat:
    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        store: Store | None = None,
        llm: LLM | object | None = _UNSET,
    ) -> None:
        self.settings = settings
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self.store = store if store is not None else Store(settings)
        self.lexical = Lexical(self.store, Path(settings.data_dir) / "lexical")
        self.conversations = Conversations(settings.data_dir)
        self.llm: LLM | None = LLM.from_settings(settings) if llm is _UNSET else llm  # type: ignore[assignment]
        self._write_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # -- resources ----------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        with self._embedder_lock:
            if self._embedder is None:
                self._embedder = load_embedder(
                    self.settings.embedding_model,
                    batch_size=self.settings.embedding_batch_size,
                    backend=self.settings.embedding_backend,
                )
            return self._embedder

    @property
    def embedder_loaded(self) -> bool:
        return self._embedder is not None

    def _write_lock(self, collection: str) -> threading.Lock:
        with self._guard:
            return self._write_locks.setdefault(collection, threading.Lock())

    # -- collections ---------------------------------------------------------------

    def collections(self) -> list[CollectionInfo]:
        return self.store.list_collections()

    def collection_names(self) -> list[str]:
        return self.store.collection_names()

    def collection(self, name: str | None = None) -> CollectionInfo:
        return self.store.collection_info(name or self.settings.collection)

    def create_collection(
        self,
        name: str,
        *,
        chunk_tokens: int | None = None,
        chunk_overlap: int | None = None,
    ) -> CollectionInfo:
        size = chunk_tokens if chunk_tokens is not None else self.settings.chunk_tokens
        overlap = chunk_overlap if chunk_overlap is not None else self.settings.chunk_overlap
        check_sizes(size, overlap, self.embedder.max_tokens)
        return self.store.create_collection(
            name,
            model=self.embedder.name,
            dimension=self.embedder.dimension,
            chunk_tokens=size,
            chunk_overlap=overlap,
        )

    def ensure_collection(self, name: str | None = None) -> CollectionInfo:
        name = name or self.settings.collection
        with self._write_lock(f"create:{name}"):
            if self.store.has_collection(name):
                return self.store.collection_info(name)
            return self.create_collection(name)

    def rename_collection(self, old: str, new: str) -> None:
        # Not while a write to either name is under way (locks taken in a fixed order).
        with contextlib.ExitStack() as held:
            for name in sorted({old, new}):
                held.enter_context(self._write_lock(name))
            self.store.rename_collection(old, new)
            self.conversations.rename(old, new.strip())

    def delete_collection(self, name: str) -> None:
        with self._write_lock(name):
            key = self.store.collection_key(name)
            self.store.delete_collection(name)
            self.lexical.drop(key)
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
        ready = prepare(
            name,
            data,
            store=self.store,
            embedder=self.embedder,
            collection=info,
            settings=self.settings,
            password=password,
            progress=progress,
        )
        if isinstance(ready, IngestResult):
            return ready
        return self._commit(ready, info.name, progress)

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

        A pipeline: while file i is written to the store (in a writer thread), file i+1
        is embedded, and file i+2 is read by an extraction worker. `files` is consumed
        lazily, so a caller can read files as they are needed. `progress(i, stage,
        done, total)` reports the stages of file i up to embedding; `on_result(i,
        result)` is called in file order, from the calling thread (Streamlit widgets
        can be updated there). One upload stays within `settings.max_upload_chunks`.
        A store failure rejects the file it hit, with the reason, and the rest go on.
        """
        info = self.ensure_collection(collection)
        results: list[IngestResult | None] = []
        reported = 0
        writing: tuple[int, Future[IngestResult], Prepared] | None = None

        def flush() -> None:
            nonlocal reported
            while reported < len(results) and (r := results[reported]) is not None:
                if on_result is not None:
                    on_result(reported, r)
                reported += 1

        def settle() -> None:
            nonlocal writing
            if writing is None:
                return
            i, future, ready = writing
            writing = None
            try:
                results[i] = future.result()
            except RagError as e:
                results[i] = IngestResult(
                    file=ready.name,
                    status="rejected",
                    doc_id=ready.doc_id,
                    reason=str(e),
                    seconds=time.perf_counter() - ready.started,
                )

        def chunks_left() -> int:
            used = sum(r.chunks for r in results if r is not None and r.status == "indexed")
            used += len(writing[2].chunks) if writing is not None else 0
            return self.settings.max_upload_chunks - used

        items = iter(files)
        upcoming = next(items, None)
        with ThreadPoolExecutor(1, thread_name_prefix="docchat-writer") as writer:
            try:
                while upcoming is not None:
                    i, f, upcoming = len(results), upcoming, next(items, None)
                    results.append(None)
                    if upcoming is not None and not upcoming.error:
                        self.prefetch(
                            upcoming.name,
                            upcoming.data,
                            collection=info.name,
                            password=upcoming.password,
                        )
                    ready: Prepared | IngestResult
                    if f.error:
                        ready = IngestResult(file=f.name, status="rejected", reason=f.error)
                    else:
                        ready = prepare(
                            f.name,
                            f.data,
                            store=self.store,
                            embedder=self.embedder,
                            collection=info,
                            settings=self.settings,
                            password=f.password,
                            progress=functools.partial(progress, i) if progress else None,
                            chunks_left=chunks_left(),
                        )
                    if isinstance(ready, Prepared):
                        settle()  # one write in flight: memory stays bounded
                        writing = (i, writer.submit(self._commit, ready, info.name), ready)
                    else:
                        results[i] = ready
                    flush()
            except BaseException:
                # Stopped (Ctrl-C, a stopped Streamlit run) or a bug: let the write in
                # flight finish, so its document is complete, and report nothing more.
                if writing is not None:
                    with contextlib.suppress(Exception):
                        writing[1].result()
                raise
            settle()
            flush()
        return [r for r in results if r is not None]

    def ingest_paths(
        self,
        paths: Iterable[Path],
        *,
        collection: str | None = None,
        password: str | None = None,
        on_result: Callable[[IngestResult], None] | None = None,
    ) -> list[IngestResult]:
        """Files, and the files inside folders (recursively, sorted), one result each."""

        def read(path: Path) -> Upload:
            try:
                return Upload(path.name, path.read_bytes(), password)
            except OSError as e:
                return Upload(path.name, b"", password, error=f"cannot read: {e}")

        return self.ingest_many(
            (read(p) for p in expand_paths(paths)),
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
        try:
            known = {d.doc_id for d in self.store.documents(collection or self.settings.collection)}
        except RagError:
            return  # e.g. a new collection: `ingest` will say what is wrong, if anything
        too_big = len(data) > self.settings.max_file_mb * 1_000_000  # `prepare` rejects it
        if not too_big and hashlib.sha256(data).hexdigest() not in known:
            s = self.settings
            prefetch(
                name,
                data,
                password=password,
                timeout=s.extract_timeout,
                memory_mb=s.extract_memory_mb,
            )

    def documents(self, collection: str | None = None) -> list[DocumentInfo]:
        return self.store.documents(collection or self.settings.collection)

    def delete_document(self, doc: str, *, collection: str | None = None) -> DocumentInfo:
        name = collection or self.settings.collection
        with self._write_lock(name):
            info = self.store.delete_document(name, doc)
            self.lexical.sync(name)
            return info

    def chunks(self, doc: str, *, collection: str | None = None) -> list[Chunk]:
        name = collection or self.settings.collection
        info = self.store.document(name, doc)
        return self.store.chunks_of(name, info.doc_id)

    def original(self, doc: str, *, collection: str | None = None) -> tuple[DocumentInfo, bytes]:
        info = self.store.document(collection or self.settings.collection, doc)
        return info, self.store.original(info.doc_id)

    def reindex(
        self,
        *,
        collection: str | None = None,
        chunk_tokens: int,
        chunk_overlap: int,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> list[IngestResult]:
        """Rebuild a collection with new chunk settings (or the current embedding model).

        The new index is built under a temporary name from the stored originals, then
        swapped in: until the swap, the old one keeps answering.
        """
        name = collection or self.settings.collection
        check_sizes(chunk_tokens, chunk_overlap, self.embedder.max_tokens)
        # Writes to the collection wait until the swap: an upload meanwhile would be
        # missing from the snapshot below and lost with the old index.
        with self._write_lock(name):
            docs = self.documents(name)
            tmp = f"{name} (re-indexing)"
            if self.store.has_collection(tmp):
                self.store.delete_collection(tmp)
            self.create_collection(tmp, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap)
            results = []
            for i, d in enumerate(docs):
                if progress:
                    progress(d.name, i, len(docs))
                data = self.store.original(d.doc_id)
                results.append(self.ingest(d.name, data, collection=tmp))
            key = self.store.collection_key(name)
            self.store.delete_collection(name)
            self.lexical.drop(key)
            self.store.rename_collection(tmp, name)
        return results

    # -- retrieval and answers ----------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        collection: str | None = None,
        top_k: int | None = None,
        min_score: float | None = None,
        doc_ids: Sequence[str] | None = None,
        hybrid: bool | None = None,
        dense_weight: float | None = None,
    ) -> tuple[str, list[Hit]]:
        """(cleaned query, hits). `hybrid`/`dense_weight` override the settings."""
        cleaned = clean_query(query)
        hits = search(
            cleaned,
            store=self.store,
            embedder=self.embedder,
            collection=self.collection(collection),
            top_k=top_k or self.settings.top_k,
            min_score=self.settings.min_score if min_score is None else min_score,
            doc_ids=doc_ids,
            lexical=self.lexical,
            hybrid=self.settings.hybrid if hybrid is None else hybrid,
            dense_weight=self.settings.dense_weight if dense_weight is None else dense_weight,
            question=query,
        )
        return cleaned, hits

    def standalone_question(self, question: str, history: Sequence[Message]) -> str:
        """A follow-up rewritten to stand alone (needs an LLM; otherwise unchanged)."""
        if self.llm is None or not history:
            return question
        try:
            rewritten = self.llm.complete(
                standalone_question_messages(question, history), max_tokens=120, temperature=0.0
            ).text.strip()
        except RagError:
            return question  # retrieval with the raw follow-up still works
        return rewritten or question

    def retrieve(
        self,
        question: str,
        *,
        collection: str | None = None,
        history: Sequence[Message] = (),
        top_k: int | None = None,
        min_score: float | None = None,
        doc_ids: Sequence[str] | None = None,
    ) -> Retrieval:
        question = question.strip()
        if not question:
            raise RagError("Please type a question.")
        search_text = self.standalone_question(question, history)
        return retrieve(
            question,
            store=self.store,
            embedder=self.embedder,
            collection=self.collection(collection),
            top_k=top_k or self.settings.top_k,
            min_score=self.settings.min_score if min_score is None else min_score,
            budget=self.settings.context_tokens,
            history=history,
            doc_ids=doc_ids,
            search_text=search_text,
            lexical=self.lexical,
            hybrid=self.settings.hybrid,
            dense_weight=self.settings.dense_weight,
        )

    def stream(
        self,
        retrieval: Retrieval,
        *,
        model: str | None = None,
        temperature: float | None = None,
        llm: LLM | object | None = _UNSET,
    ) -> AnswerStream:
        return AnswerStream(
            retrieval,
            llm=self.llm if llm is _UNSET else llm,  # type: ignore[arg-type]
            embedder=self.embedder,
            model=model,
            temperature=self.settings.temperature if temperature is None else temperature,
        )

    def ask(self, question: str, **kwargs: object) -> Answer:
        """Retrieve and answer in one call (raises LLMError if generation fails)."""
        return self.stream(self.retrieve(question, **kwargs)).run()  # type: ignore[arg-type]

    # -- fine-tuning ---

    _fine_tune_jobs: FineTuneJobs | None = None  # built on first use, then kept

    def fine_tune_jobs(self) -> FineTuneJobs:
        """The fine-tuning jobs of this data dir, on the LLM's server (one per instance)."""
        llm = self.llm
        if llm is None:
            raise ConfigError("Fine-tuning needs an LLM: set OPENAI_API_KEY or OPENAI_BASE_URL.")
        with self._guard:  # sessions opening the page at once get the same one
            if self._fine_tune_jobs is None:
                self._fine_tune_jobs = FineTuneJobs(llm, self.settings.data_dir)
            return self._fine_tune_jobs

    def chunk(self, chunk_id: str, *, collection: str | None = None) -> Chunk:
        """One chunk by its id (`doc_id:index`), e.g. the source of a Q&A pair."""
        name = collection or self.settings.collection
        found, _ = self.store.chunks_by_id(name, [chunk_id])
        if not found:
            raise DocumentNotFoundError(
                f"{name} has no chunk {chunk_id}: its document was deleted or re-indexed."
            )
        return found[0]

    def all_chunks(self, collection: str | None = None) -> list[Chunk]:
        """Every chunk of the collection's ready documents (what fine-tuning sets use)."""
        return list(self.store.all_chunks(collection or self.settings.collection))


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(
                sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith("."))
            )
        else:
            out.append(p)
    return out
