"""Documents: add files (one, an upload's worth, or folders), read them back, delete
them, and re-index a collection from its stored originals.

An upload is a pipeline (`ingest/pipeline.py`): while file i is written to the store
(in a writer thread), the files after it are read, split and embedded. Embedding runs
unlocked (sessions may prepare the same file at once); writes to one collection are
one at a time (`WriteLocks`), and `commit` checks "unchanged" again under the lock.

Left out: background uploads (`services/uploads.py` queues them as jobs that come
back here in a worker).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from rag.components.lexical import Lexical
from rag.components.store import Store
from rag.core.errors import DocumentNotFoundError
from rag.core.files import tree_bytes
from rag.core.models import Chunk, CollectionInfo, DocumentInfo, IngestResult, Upload
from rag.core.settings import Settings
from rag.ingest.pipeline import UploadProgress, prefetch_file, read_paths, run_upload
from rag.ingest.splitting import check_sizes
from rag.ingest.stages import IngestProgress, Prepared, commit, prepare
from rag.services.collections import CollectionService
from rag.services.gate import Gate
from rag.services.resources import LazyEmbedder, WriteLocks
from rag.team.access import User
from rag.views.page_view import PageViews

OnResult = Callable[[int, IngestResult], None]


@dataclass(frozen=True)
class DocumentService:
    settings: Settings
    store: Store
    gate: Gate
    embedder: LazyEmbedder
    locks: WriteLocks
    lexical: Lexical
    page_views: PageViews
    collections: CollectionService

    # -- adding files ---------------------------------------------------------------------

    def ingest(
        self, user: User, f: Upload, collection: str | None, progress: IngestProgress | None
    ) -> IngestResult:
        """Add one file; bad input comes back as a `rejected` result. Store failures
        raise `RagError` (nothing is left half-written)."""
        info = self.collections.ensure(user, collection)
        ready = self._prepare(info, f, progress, None)
        if isinstance(ready, IngestResult):
            return ready
        return self._commit(ready, info.name, progress)

    def _prepare(
        self, info: CollectionInfo, f: Upload, report: IngestProgress | None, left: int | None
    ) -> Prepared | IngestResult:
        embedder = self.embedder.for_collection(info)  # a tuned collection's own model
        return prepare(f.name, f.data, store=self.store, embedder=embedder,
                       collection=info, settings=self.settings, password=f.password,
                       progress=report, chunks_left=left,
                       validators=(f.etag, f.last_modified))  # fmt: skip

    def _commit(
        self, ready: Prepared, collection: str, progress: IngestProgress | None = None
    ) -> IngestResult:
        with self.locks(collection):
            result = commit(ready, store=self.store, collection=collection, progress=progress)
            if result.status == "indexed":
                self.lexical.sync(collection)
            return result

    def ingest_many(
        self,
        user: User,
        files: Iterable[Upload],
        collection: str | None,
        progress: UploadProgress | None,
        on_result: OnResult | None,
    ) -> list[IngestResult]:
        """The files of one upload, one result each, in order (`run_upload`): `files` is
        consumed lazily; `progress(i, stage, done, total)` reports file i's stages up to
        embedding; `on_result(i, result)` comes in file order from the calling thread.
        One upload stays within `settings.max_upload_chunks`; a store failure rejects
        the file it hit and the rest go on."""
        info = self.collections.ensure(user, collection)
        return run_upload(
            files,
            prepare=functools.partial(self._prepare, info),
            commit=functools.partial(self._commit, collection=info.name),
            prefetch_next=lambda f: self.prefetch(user, f, info.name),
            max_chunks=self.settings.max_upload_chunks,
            progress=progress,
            on_result=on_result,
        )

    def ingest_paths(
        self,
        user: User,
        paths: Iterable[Path],
        collection: str | None,
        password: str | None,
        on_result: Callable[[IngestResult], None] | None,
    ) -> list[IngestResult]:
        """Files, and the files inside folders (recursively, sorted), one result each."""
        report = (lambda _, r: on_result(r)) if on_result is not None else None
        return self.ingest_many(user, read_paths(paths, password), collection, None, report)

    def prefetch(self, user: User, f: Upload, collection: str | None) -> None:
        """Start reading the next file of an upload while the current one is embedded;
        a later ingest of the same file takes the result. Files already in the
        collection are not read; errors wait for the ingest."""
        target = self.gate.name(collection)
        if self.store.has_collection(target) and not self.gate.may(user, "upload", target):
            return  # the ingest will say so
        prefetch_file(f.name, f.data, self.store, target, self.settings, f.password)

    # -- reading and deleting ---------------------------------------------------------------

    def listing(self, user: User, collection: str | None) -> list[DocumentInfo]:
        return self.store.documents(self.gate.open(user, collection, "read"))

    def delete(self, user: User, doc: str, collection: str | None) -> DocumentInfo:
        name = self.gate.open(user, collection, "delete_document")
        with self.locks(name):
            info = self.store.delete_document(name, doc)
            self.lexical.sync(name)
            self.page_views.drop(info.doc_id)
            return info

    def chunks(self, user: User, doc: str, collection: str | None) -> list[Chunk]:
        name = self.gate.open(user, collection, "read")
        return self.store.chunks_of(name, self.store.document(name, doc).doc_id)

    def chunk(self, user: User, chunk_id: str, collection: str | None) -> Chunk:
        """One chunk by its id (`doc_id:index`), e.g. the source of a Q&A pair."""
        name = self.gate.open(user, collection, "read")
        found, _ = self.store.chunks_by_id(name, [chunk_id])
        if not found:
            raise DocumentNotFoundError(
                f"{name} has no chunk {chunk_id}: its document was deleted or re-indexed."
            )
        return found[0]

    def all_chunks(self, user: User, collection: str | None) -> list[Chunk]:
        """Every chunk of the collection's ready documents (what fine-tuning sets use)."""
        return list(self.store.all_chunks(self.gate.open(user, collection, "read")))

    def original(self, user: User, doc: str, collection: str | None) -> tuple[DocumentInfo, bytes]:
        info = self.store.document(self.gate.open(user, collection, "read"), doc)
        return info, self.store.original(info.doc_id)

    def disk_bytes(self) -> int:
        """Bytes on disk under the data dir: the local index, the originals, the rest."""
        return tree_bytes(Path(self.settings.data_dir))

    # -- re-indexing -----------------------------------------------------------------------

    def reindex(
        self,
        user: User,
        collection: str | None,
        chunk_tokens: int,
        chunk_overlap: int,
        progress: Callable[[str, int, int], None] | None,
    ) -> list[IngestResult]:
        """Rebuild a collection with new chunk settings (or the current embedding model)
        from its stored originals, under a temporary name, then swap it in: until the
        swap, the old index answers."""
        name = self.gate.open(user, collection, "reindex")
        # A collection tuned on its questions keeps its tuned model.
        e = self.embedder.for_collection(self.store.collection_info(name))
        check_sizes(chunk_tokens, chunk_overlap, e.max_tokens)
        # Writes to the collection wait until the swap: an upload meanwhile would be
        # missing from the snapshot and lost with the old index.
        with self.locks(name):
            docs = self.store.documents(name)
            tmp = f"{name} (re-indexing)"
            if self.store.has_collection(tmp):
                self.store.delete_collection(tmp)
            # The temporary collection has no sharing record (the right to re-index
            # `name` covers it), so none outlives the swap; one an interrupted re-index
            # of an earlier release left goes now.
            self.gate.sharing.drop(tmp)
            info = self.store.create_collection(tmp, model=e.name, dimension=e.dimension,
                                                chunk_tokens=chunk_tokens,
                                                chunk_overlap=chunk_overlap)  # fmt: skip
            results = []
            for i, d in enumerate(docs):
                if progress:
                    progress(d.name, i, len(docs))
                data = self.store.original(d.doc_id)
                again = Upload(d.name, data, etag=d.etag, last_modified=d.last_modified)
                ready = self._prepare(info, again, None, None)
                results.append(ready if isinstance(ready, IngestResult) else
                               self._commit(ready, tmp))  # fmt: skip
            key = self.store.collection_key(name)
            self.store.delete_collection(name)
            self.lexical.drop(key)
            self.store.rename_collection(tmp, name)
            return results
