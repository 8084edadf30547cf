"""Eight sessions on one engine at once, as Streamlit runs them: threads sharing one DocChat.

Each session uploads its own file (PDF, Word, HTML, Markdown, text, code; into three
collections, so ingestions, extraction workers and the shared real embedding model
run side by side), uploads one file every session shares, and asks questions while
the others are still uploading. Every document must end up indexed exactly once,
with all its chunks and nothing extra, and no session may see an error.
(A second *process* on the same data dir must refuse at once: tests/test_engine.py.)
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest

from rag import DocChat, Settings
from tests.fixtures.fake_openai import FakeOpenAIServer
from tests.fixtures.pdfgen import make_pdf, text_ops

SESSIONS = 8
SHARED = b"Every session uploads this same file about the shared lighthouse on the cliff.\n" * 5
TOPICS = [
    "Volcanoes in Iceland erupt with glowing basalt lava near the glaciers.",
    "Penguins in Antarctica huddle together to survive the polar winter storms.",
    "Sourdough bread rises slowly because wild yeast ferments the flour overnight.",
    "Jupiter's great red spot is a storm larger than the whole planet Earth.",
    "Honeybees dance in the hive to show the others where the flowers are.",
    "Medieval castles had moats and drawbridges to keep attackers outside.",
    "Coral reefs bleach white when the ocean water becomes too warm.",
    "Espresso machines push hot water through finely ground coffee at high pressure.",
]


def docx_bytes(text: str) -> bytes:
    import docx

    d = docx.Document()
    d.add_heading("Session notes", level=1)
    for _ in range(6):
        d.add_paragraph(text)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def upload_for(i: int) -> tuple[str, bytes, str]:
    """(file name, bytes, collection) of session i."""
    text = TOPICS[i]
    body = (text + " ") * 15
    files = [
        (f"s{i}.pdf", make_pdf([text_ops([text] * 8), text_ops([text] * 4)])),
        (f"s{i}.docx", docx_bytes(text)),
        (f"s{i}.html", f"<html><body><h1>Topic</h1><p>{body}</p></body></html>".encode()),
        (f"s{i}.md", f"# Topic {i}\n\n{body}\n\n## More\n\n{body}\n".encode()),
        (f"s{i}.txt", body.encode()),
        (f"s{i}.py", f'def topic_{i}():\n    """{text}"""\n    return {text!r}\n'.encode()),
        (f"s{i}.pdf", make_pdf([text_ops([text] * 10)])),
        (f"s{i}.htm", f"<p>{body}</p><script>alert(1)</script>".encode()),
    ]
    name, data = files[i]
    collection = ["default", "alpha", "beta"][i % 3]
    return name, data, collection


@pytest.mark.slow
def test_eight_sessions_at_once(
    tmp_path: Path, real_embedder: object, openai_server: FakeOpenAIServer
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        openai_base_url=openai_server.base_url,
        openai_api_key="test-key",
        chat_model="fake-model",
        llm_max_retries=0,
        min_score=0.0,
    )
    app = DocChat.open(settings, embedder=real_embedder)  # type: ignore[arg-type]
    openai_server.token_delay = 0.01  # answers stream while other sessions upload
    start = threading.Barrier(SESSIONS)
    errors: list[str] = []
    results: dict[int, list[str]] = {}
    questions = [0]
    lock = threading.Lock()

    def session(i: int) -> None:
        try:
            name, data, collection = upload_for(i)
            start.wait(timeout=60)
            statuses = [app.ingest(name, data, collection=collection).status]
            statuses.append(app.ingest("shared.txt", SHARED).status)
            history: list[dict[str, str]] = []
            for question in (TOPICS[i].split(" ", 4)[-1], "What about the lighthouse?"):
                stream = app.stream(app.retrieve(question, collection=collection, history=history))
                text = "".join(stream)
                answer = stream.answer
                assert answer is not None and not answer.error and answer.sources, answer
                history += [
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": text},
                ]
                with lock:
                    questions[0] += 1
            files = {s.chunk.file for s in app.ask(TOPICS[i], collection=collection).sources}
            assert name in files, (name, files)
            app.documents(collection)
            results[i] = statuses
        except Exception as e:  # collected: a thread's exception would vanish otherwise
            with lock:
                errors.append(f"session {i}: {type(e).__name__}: {e}")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=session, args=(i,)) for i in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    seconds = time.perf_counter() - t0
    assert errors == []
    assert sorted(results) == list(range(SESSIONS))
    assert all(r[0] == "indexed" for r in results.values()), results
    shared = sorted(r[1] for r in results.values())
    assert shared == ["indexed"] + ["unchanged"] * (SESSIONS - 1)  # the same file: once

    total_docs = total_chunks = 0
    for collection in ("default", "alpha", "beta"):
        docs = app.documents(collection)
        want = {upload_for(i)[0] for i in range(SESSIONS) if upload_for(i)[2] == collection}
        if collection == "default":
            want.add("shared.txt")
        assert sorted(d.name for d in docs) == sorted(want)  # each exactly once
        for d in docs:
            chunks = app.chunks(d.doc_id, collection=collection)
            assert [c.index for c in chunks] == list(range(d.chunks)), d.name
        stored = app.services.store.count_chunks(collection)
        assert stored == sum(d.chunks for d in docs)  # nothing lost, nothing duplicated
        total_docs += len(docs)
        total_chunks += stored
    print(
        f"\nconcurrency: {SESSIONS} sessions, {total_docs} documents ({total_chunks} chunks) "
        f"indexed once each, {questions[0] + SESSIONS} questions answered, 0 errors, "
        f"{seconds:.1f} s"
    )
