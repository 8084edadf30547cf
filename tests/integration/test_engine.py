"""The engine end to end on the fake embedder and a real Chroma in a temp dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag import (
    CollectionExistsError,
    CollectionNotFoundError,
    DocChat,
    DocumentInfo,
    DocumentNotFoundError,
    LLMError,
    RagError,
    ReindexNeededError,
    Settings,
    StoreUnavailableError,
)
from rag.answering.stream import EXTRACTIVE_LABEL, NO_ANSWER_TEXT
from tests.fixtures.fake_openai import FakeOpenAIServer
from tests.fixtures.fakes import HashEmbedder

CATS = (
    b"# Cats\n\nCats sleep sixteen hours a day. They purr when content.\n\n"
    b"## Food\n\nCats eat fish and mice.\n"
)
DOGS = b"Dogs bark at strangers. Dogs love long walks in the park every morning.\n"


def test_ingest_search_and_provenance(app: DocChat) -> None:
    r = app.ingest("cats.md", CATS)
    assert r.status == "indexed" and r.chunks >= 2, r
    app.ingest("dogs.txt", DOGS)
    query, hits = app.search("What do cats eat?")
    assert query == "cats eat"
    assert hits[0].chunk.file == "cats.md"
    assert hits[0].chunk.section == "Cats > Food"
    text = CATS.decode()
    for h in hits:
        if h.chunk.file == "cats.md":
            assert text[h.chunk.start : h.chunk.end] == h.chunk.text


def test_same_bytes_unchanged_and_changed_file_replaces(app: DocChat) -> None:
    first = app.ingest("notes.txt", DOGS)
    again = app.ingest("notes.txt", DOGS)
    assert again.status == "unchanged"
    assert app.collection().chunks == first.chunks
    changed = app.ingest("notes.txt", DOGS + b"Dogs also swim in lakes.\n")
    assert changed.status == "indexed" and changed.replaced == first.doc_id
    docs = app.documents()
    assert [d.doc_id for d in docs] == [changed.doc_id]
    assert app.collection().chunks == changed.chunks
    with pytest.raises(RagError):
        app.services.store.original(first.doc_id)  # the old original is gone too


def test_delete_removes_chunks_and_file(app: DocChat) -> None:
    r = app.ingest("cats.md", CATS)
    assert app.original("cats.md")[1] == CATS
    app.delete_document("cats.md")
    assert app.documents() == []
    assert app.services.store.count_chunks("default") == 0
    with pytest.raises(DocumentNotFoundError):
        app.delete_document(r.doc_id)
    assert not any(app.services.store.originals.dir.rglob(r.doc_id))


def test_rejections_do_not_touch_index(app: DocChat) -> None:
    app.ingest("cats.md", CATS)
    before = app.collection().chunks
    for name, data in [("x.exe", b"MZ\x00\x00"), ("e.txt", b""), ("bad.pdf", b"%PDF-1.4 garbage")]:
        r = app.ingest(name, data)
        assert r.status == "rejected" and r.reason, r
    assert app.collection().chunks == before


def test_collections_crud(app: DocChat) -> None:
    app.ingest("cats.md", CATS, collection="Pets & more")
    names = [c.name for c in app.collections()]
    assert names == ["Pets & more"]
    with pytest.raises(CollectionExistsError):
        app.create_collection("Pets & more")
    app.rename_collection("Pets & more", "Animals")
    assert app.collection("Animals").documents == 1
    with pytest.raises(CollectionNotFoundError):
        app.collection("Pets & more")
    app.delete_collection("Animals")
    assert app.collections() == []


def test_other_model_needs_reindex(settings: Settings) -> None:
    a = DocChat.open(settings, embedder=HashEmbedder(64, "model-a"))
    a.ingest("cats.md", CATS)
    b = DocChat.open(settings, embedder=HashEmbedder(32, "model-b"), store=a.services.store)
    with pytest.raises(ReindexNeededError, match="Re-index needed"):
        b.search("cats")
    r = b.ingest("dogs.txt", DOGS)
    assert r.status == "rejected" and "Re-index needed" in r.reason


def test_reindex_with_new_chunk_settings(app: DocChat) -> None:
    app.ingest("cats.md", CATS * 20)
    results = app.reindex(chunk_tokens=32, chunk_overlap=4)
    assert [r.status for r in results] == ["indexed"]
    info = app.collection()
    assert info.chunk_tokens == 32 and info.documents == 1
    assert [c.name for c in app.collections()] == ["default"]


def test_answers_extractive_and_no_answer(app: DocChat) -> None:
    app.ingest("cats.md", CATS)
    ans = app.ask("What do cats eat?")
    assert ans.mode == "extractive"
    assert ans.text.startswith(EXTRACTIVE_LABEL)
    assert "[1]" in ans.text and 1 in ans.cited
    assert ans.sources[0].chunk.file == "cats.md"
    strict = app.ask("quantum chromodynamics", min_score=0.99)
    assert strict.mode == "no-answer" and strict.text == NO_ANSWER_TEXT and strict.sources == ()


def test_restrict_to_documents(app: DocChat) -> None:
    app.ingest("cats.md", CATS)
    dogs = app.ingest("dogs.txt", DOGS)
    _, hits = app.search("cats eat fish", doc_ids=[dogs.doc_id])
    assert hits and all(h.chunk.file == "dogs.txt" for h in hits)


def test_pending_document_is_removed_on_restart(settings: Settings) -> None:
    a = DocChat.open(settings, embedder=HashEmbedder())
    a.ingest("cats.md", CATS)
    info = a.collection()
    # Simulate a crash after some chunks were written but before "ready".
    fake = DocumentInfo(
        doc_id="f" * 64, name="half.txt", kind="text", pages=1, chunks=3, size=10, added=0.0
    )
    a.services.store.begin_document(info.name, fake)
    from rag.core.models import Chunk

    chunk = Chunk(doc_id=fake.doc_id, file="half.txt", index=0, text="cats half", start=0, end=9)
    a.services.store.add_chunks(info.name, [chunk], HashEmbedder().embed(["cats half"]))
    assert [d.name for d in a.documents()] == ["cats.md"]  # pending is never listed
    _, hits = a.search("cats half")
    assert all(h.chunk.file != "half.txt" for h in hits)  # nor searched
    removed = a.services.store.recover()  # what the next start runs
    assert removed == ["half.txt"]
    assert a.services.store.count_chunks(info.name) == a.collection().chunks
    assert a.ingest("half.txt", b"cats half and more").status == "indexed"


def test_second_process_refuses_data_dir(app: DocChat, settings: Settings) -> None:
    app.ensure_collection()
    code = (
        "import sys, time; from rag import Settings, Store, StoreUnavailableError\n"
        f"t0 = time.monotonic()\ntry:\n    Store(Settings(data_dir={str(settings.data_dir)!r}))\n"
        "except StoreUnavailableError as e:\n"
        "    print(e); print(f'refused after {time.monotonic() - t0:.3f} s'); sys.exit(3)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 3, proc.stderr
    assert "in use by another DocChat process" in proc.stdout
    assert f"(pid {os.getpid()})" in proc.stdout  # it names the holder
    refused_after = float(proc.stdout.rsplit("refused after ", 1)[1].split()[0])
    assert refused_after < 2.0  # at once: no waiting on the lock, no Chroma opened
    assert StoreUnavailableError.__mro__[1] is RagError


def llm_app(settings: Settings, server: FakeOpenAIServer) -> DocChat:
    s = settings.with_(
        openai_base_url=server.base_url,
        openai_api_key=server.api_key or "",
        chat_model="fake-model",
        llm_max_retries=0,
        llm_timeout=5.0,
    )
    return DocChat.open(s, embedder=HashEmbedder())


def test_llm_answer_streams_with_citations(
    settings: Settings, openai_server: FakeOpenAIServer
) -> None:
    app = llm_app(settings, openai_server)
    app.ingest("cats.md", CATS)
    openai_server.reply = "Cats eat fish and mice [1]."
    stream = app.stream(app.retrieve("What do cats eat?"))
    parts = list(stream)
    assert len(parts) > 1 and "".join(parts) == "Cats eat fish and mice [1]."
    ans = stream.answer
    assert ans is not None and ans.mode == "llm" and ans.cited == (1,)
    assert ans.prompt_tokens > 0 and ans.sources
    sent = openai_server.requests[-1]
    assert sent["stream"] is True and sent["model"] == "fake-model"
    assert "[1] (cats.md" in sent["messages"][0]["content"]
    assert sent["messages"][-1]["content"] == "Question: What do cats eat?"


def test_llm_failure_keeps_sources(settings: Settings, openai_server: FakeOpenAIServer) -> None:
    app = llm_app(settings, openai_server)
    app.ingest("cats.md", CATS)
    openai_server.fail_next("server_error")
    stream = app.stream(app.retrieve("What do cats eat?"))
    with pytest.raises(LLMError, match="HTTP 500"):
        list(stream)
    assert stream.answer is not None and stream.answer.sources
    assert "HTTP 500" in stream.answer.error
    assert app.ask("What do cats eat?").mode == "llm"  # the next question works


def test_no_answer_skips_llm(settings: Settings, openai_server: FakeOpenAIServer) -> None:
    app = llm_app(settings, openai_server)
    app.ingest("cats.md", CATS)
    before = len(openai_server.requests)
    ans = app.ask("zebra quantum", min_score=0.99)
    assert ans.mode == "no-answer" and len(openai_server.requests) == before


def test_server_timeout_names_the_wait(tmp_path: Path) -> None:
    """A Chroma server that stops answering reads as an outage with its time limit,
    not as a bare exception name."""
    import httpx

    from rag.components.chroma import translate

    settings = Settings(data_dir=tmp_path, chroma_host="127.0.0.1", chroma_port=9)
    error = translate(httpx.ReadTimeout("timed out"), settings)
    assert isinstance(error, StoreUnavailableError)
    assert str(error) == (
        "The Chroma server at 127.0.0.1:9 did not answer within 30 s. "
        "It may be overloaded or stuck; try again."
    )
    assert "Is it running?" in str(translate(httpx.ConnectError("refused"), settings))


def test_upload_chunk_budget_rejects_files_past_it(tmp_path: Path) -> None:
    """DOCCHAT_MAX_UPLOAD_CHUNKS bounds one upload; a file past it is rejected with the
    reason, the files before it stay indexed, and the next upload starts afresh."""
    settings = Settings(
        data_dir=tmp_path / "data", max_upload_chunks=3, chunk_tokens=16, chunk_overlap=0
    )
    app = DocChat.open(settings, embedder=HashEmbedder())
    folder = tmp_path / "in"
    folder.mkdir()
    sentence = "Cats sleep sixteen hours a day and purr when they are content. "
    (folder / "a.txt").write_text(sentence * 2)
    (folder / "b.txt").write_text(sentence * 4)
    results = app.ingest_paths([folder])
    assert [r.status for r in results] == ["indexed", "rejected"], results
    assert results[0].chunks < 3
    assert "DOCCHAT_MAX_UPLOAD_CHUNKS" in results[1].reason
    assert "b.txt makes" in results[1].reason
    # Nothing half-written, and a later upload of the file alone fits only if small enough.
    assert [d.name for d in app.documents()] == ["a.txt"]
    again = app.ingest_paths([folder / "a.txt"])
    assert again[0].status == "unchanged"


def test_ingest_many_reports_in_order_and_never_stores_twice(app: DocChat) -> None:
    """The pipelined upload: results in file order (from the caller's thread), the same
    bytes twice in one upload stored once, an unreadable file rejected with its reason,
    and progress per file up to embedding."""
    import threading

    from rag import Upload

    seen: list[tuple[int, str, str]] = []
    stages: set[tuple[int, str]] = set()
    caller = threading.current_thread()

    def on_result(i: int, r: object) -> None:
        assert threading.current_thread() is caller
        seen.append((i, r.file, r.status))  # type: ignore[attr-defined]

    results = app.ingest_many(
        [
            Upload("cats.md", CATS),
            Upload("gone.txt", b"", error="cannot read: no such file"),
            Upload("dogs.txt", DOGS),
            Upload("cats-again.md", CATS),
        ],
        progress=lambda i, stage, done, total: stages.add((i, stage)),
        on_result=on_result,
    )
    assert [(r.file, r.status) for r in results] == [
        ("cats.md", "indexed"),
        ("gone.txt", "rejected"),
        ("dogs.txt", "indexed"),
        ("cats-again.md", "unchanged"),
    ]
    assert seen == [(i, r.file, r.status) for i, r in enumerate(results)]
    assert results[1].reason == "cannot read: no such file"
    assert {(0, "embedding"), (2, "embedding")} <= stages
    assert sorted(d.name for d in app.documents()) == ["cats.md", "dogs.txt"]
    assert sum(d.chunks for d in app.documents()) == results[0].chunks + results[2].chunks


def _run_with_a_slow_first_file(
    names: list[str], chunks_each: int, prepared_before_release: int
) -> tuple[list[str], list[str], list[str]]:
    """`run_upload` with fakes: the first file's `prepare` waits until
    `prepared_before_release` later files are prepared (or 10 s), then 0.3 s more in
    which no further file may start. Gives (prepared, written, reported) file names."""
    import threading
    import time

    import numpy as np

    from rag import IngestResult, Upload
    from rag.ingest.pipeline import run_upload
    from rag.ingest.stages import Prepared

    prepared: list[str] = []
    written: list[str] = []
    lock = threading.Condition()

    def prepare(f: Upload, report: object, left: int) -> Prepared:
        if f.name == names[0]:
            with lock:
                lock.wait_for(lambda: len(prepared) >= prepared_before_release, timeout=10)
            time.sleep(0.3)
        chunks = [object()] * chunks_each
        with lock:
            prepared.append(f.name)
            lock.notify_all()
        return Prepared(f.name, b"", f.name, None, chunks, np.zeros((chunks_each, 2)), 0.0)  # type: ignore[arg-type]

    def commit(ready: Prepared) -> IngestResult:
        written.append(ready.name)
        return IngestResult(file=ready.name, status="indexed", chunks=len(ready.chunks))

    results = run_upload(
        (Upload(n, n.encode()) for n in names),
        prepare=prepare,  # type: ignore[arg-type]
        commit=commit,
        prefetch_next=lambda u: None,
        max_chunks=10**9,
    )
    return prepared, written, [r.file for r in results]


def test_a_slow_file_does_not_hold_the_files_after_it() -> None:
    """While the first file is still being read (a long PDF, a page read by OCR), the
    files after it are prepared, up to the window; all are written and reported in
    the upload's order."""
    from rag.ingest.pipeline import WINDOW

    names = [f"f{i}.txt" for i in range(WINDOW + 4)]
    prepared, written, reported = _run_with_a_slow_first_file(names, 1, WINDOW - 1)
    assert prepared[: WINDOW - 1] == names[1:WINDOW]  # all before the first, no more
    assert prepared[WINDOW - 1] == names[0]
    assert written == reported == names


def test_prepared_files_waiting_to_be_written_are_bounded_by_chunks() -> None:
    from rag.ingest.pipeline import HELD_CHUNKS

    names = [f"f{i}.txt" for i in range(6)]
    prepared, written, reported = _run_with_a_slow_first_file(names, HELD_CHUNKS // 2, 2)
    assert prepared[:3] == ["f1.txt", "f2.txt", "f0.txt"]  # two held, then no more
    assert written == reported == names


def test_ingest_many_store_failure_rejects_that_file_only(
    app: DocChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag import Upload

    real = app.services.store.add_chunks
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise StoreUnavailableError("The index is not available right now.")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(app.services.store, "add_chunks", flaky)
    results = app.ingest_many([Upload("cats.md", CATS), Upload("dogs.txt", DOGS)])
    assert [r.status for r in results] == ["rejected", "indexed"]
    assert results[0].reason == "The index is not available right now."
    # Nothing half-written: the failed file left no record or chunk behind.
    assert [d.name for d in app.documents()] == ["dogs.txt"]
    assert app.collection().chunks == results[1].chunks


def test_file_size_and_page_limits_name_their_setting(tmp_path: Path) -> None:
    from tests.fixtures.pdfgen import make_pdf, text_ops

    settings = Settings(data_dir=tmp_path / "data", max_pages=2, max_file_mb=0.01)
    app = DocChat.open(settings, embedder=HashEmbedder())
    pages = [text_ops([f"Page {i} talks about owls and their long nights."]) for i in range(3)]
    long_pdf = app.ingest("long.pdf", make_pdf(pages))
    assert long_pdf.status == "rejected"
    assert long_pdf.reason == "long.pdf has 3 pages; the limit is 2 (DOCCHAT_MAX_PAGES)."
    big = app.ingest("big.txt", b"Owls hunt at night. " * 1000)
    assert big.status == "rejected" and "(DOCCHAT_MAX_FILE_MB)" in big.reason
    assert app.ingest("short.pdf", make_pdf(pages[:2])).status == "indexed"
    assert [d.name for d in app.documents()] == ["short.pdf"]


def test_collection_lookups_racing_a_delete_or_rename_never_go_stale(app: DocChat) -> None:
    """Another session looking a collection up while it is deleted or renamed waits for
    the change, then sees the truth: no cached handle outlives it."""
    import threading

    store = app.services.store
    app.ingest("a.txt", b"alpha beta gamma delta\n", collection="X")
    outcome: list[object] = []

    def look_up(name: str) -> None:
        try:
            outcome.append([d.name for d in store.documents(name)])
        except RagError as e:
            outcome.append(type(e))

    def racing(real: object, name: str) -> object:
        def hooked(*args: object, **kwargs: object) -> object:
            if hasattr(hooked, "racer"):  # one racing lookup per change
                return real(*args, **kwargs)  # type: ignore[operator]
            store._forget_pairs()  # the lookup below must miss the cache and look anew
            racer = threading.Thread(target=look_up, args=(name,))
            racer.start()
            racer.join(timeout=0.3)
            assert racer.is_alive(), "the lookup should wait for the change to finish"
            hooked.racer = racer  # type: ignore[attr-defined]
            return real(*args, **kwargs)  # type: ignore[operator]

        return hooked

    real_delete = store._client.delete_collection
    hook = racing(real_delete, "X")
    store._client.delete_collection = hook
    try:
        app.delete_collection("X")
    finally:
        store._client.delete_collection = real_delete
    hook.racer.join(timeout=10)  # type: ignore[attr-defined]
    assert outcome == [CollectionNotFoundError]
    with pytest.raises(CollectionNotFoundError):
        store.documents("X")

    app.ingest("a.txt", b"alpha beta gamma delta\n", collection="X")
    outcome.clear()
    chunks, _ = store._pair("X")
    real_modify = chunks.modify
    hook = racing(real_modify, "X")
    chunks.modify = hook
    try:
        app.rename_collection("X", "Y")
    finally:
        chunks.modify = real_modify
    hook.racer.join(timeout=10)  # type: ignore[attr-defined]
    assert outcome == [CollectionNotFoundError]
    assert [c.name for c in app.collections()] == ["Y"]
    with pytest.raises(CollectionNotFoundError):
        store.documents("X")
    assert [d.name for d in app.documents("Y")] == ["a.txt"]


def test_prefetch_never_reads_a_file_over_the_size_limit(tmp_path: Path) -> None:
    from rag.ingest import extract

    app = DocChat.open(
        Settings(data_dir=tmp_path / "data", max_file_mb=0.01), embedder=HashEmbedder()
    )
    big = b"<html><body>" + b"<p>Owls hunt at night.</p>" * 3000 + b"</body></html>"
    app.prefetch("big.html", big)
    assert not extract._prefetched
    assert app.ingest("big.html", big).status == "rejected"


def test_conversations_follow_a_collection_rename_and_delete(app: DocChat) -> None:
    """The engine keeps a collection's saved conversations with it, whoever renames or
    deletes it (a new collection under an old name starts with no history)."""
    app.ingest("cats.md", CATS, collection="pets")
    answer = app.ask("What do cats eat?", collection="pets")
    mine = app.services.conversations  # single-user mode's
    cid = mine.create("pets").id
    mine.append(cid, "What do cats eat?", answer)
    app.rename_collection("pets", " animals ")
    assert mine.latest("pets") is None and mine.get(cid).collection == "animals"
    assert [t.question for t in mine.get(cid).turns] == ["What do cats eat?"]
    app.delete_collection("animals")
    assert mine.list() == []
