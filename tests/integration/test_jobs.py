"""Background ingestion (`rag/jobs/`): jobs on the real SQLite Huey queue and record
store, run by real consumer threads over a DocChat on the fast fake embedder.

Submit and finish, per-file progress, cancel, a worker that dies mid-job (its lease
expires and another worker, or the next process, finishes the job), idempotence (a
document already indexed is not indexed again; a half-written one is redone), and a
bad file that fails with its reason while the others finish.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag import DocChat, Settings, Upload
from rag.core.errors import AccessDeniedError, JobNotFoundError
from rag.jobs import CANCELLED, DONE, FAILED, REJECTED, Job, JobQueue, Workers
from rag.team.access import LOCAL, READER, Sharing
from rag.team.accounts import Accounts
from tests.fixtures.fakes import HashEmbedder

CATS = b"# Cats\n\nCats sleep sixteen hours a day. They purr when content.\n"
DOGS = b"# Dogs\n\nDogs bark at strangers and love long walks in the park.\n"
OWLS = b"# Owls\n\nOwls hunt at night and turn their heads almost all the way around.\n"


class SlowEmbedder(HashEmbedder):
    """Takes `delay` seconds a text, reporting progress after each; raises
    KeyboardInterrupt (what a kill looks like to the thread) on call `die_on`, or on
    the first call whose texts contain `die_for`."""

    def __init__(
        self, delay: float = 0.0, die_on: int | None = None, die_for: str | None = None
    ) -> None:
        super().__init__()
        self.delay = delay
        self.die_on = die_on
        # Which file dies, by its text: an upload prepares two files at once, so which
        # file makes call 2 is up to the threads (owls.md's call came before dogs.md's
        # once, and dogs.md was written before the stop).
        self.die_for = die_for
        self.died = threading.Event()
        self.started = 0  # calls started (under the lock `calls` is counted with)

    def embed(
        self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        with self._calls_lock:
            self.started += 1
            dies = self.started == self.die_on or (
                self.die_for is not None
                and not self.died.is_set()
                and any(self.die_for in t for t in texts)
            )
            if dies:
                self.died.set()
        if dies:
            raise KeyboardInterrupt
        for i in range(len(texts)):
            time.sleep(self.delay)
            if progress:
                progress(i + 1, len(texts))
        return super().embed(texts)  # `calls`: one more, once the call has ended


def paragraphs(n: int, word: str) -> bytes:
    return "\n\n".join(f"{word} paragraph {i} " + "text " * 150 for i in range(n)).encode()


@pytest.fixture
def job_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", min_score=0.0, workers=1, job_lease=1.0)


@pytest.fixture
def running() -> Iterator[list[Workers]]:
    started: list[Workers] = []
    yield started
    for w in started:
        w.stop()


def engine_with_workers(
    settings: Settings, started: list[Workers], embedder: HashEmbedder | None = None, **kw: object
) -> DocChat:
    app = DocChat.open(settings, embedder=embedder or HashEmbedder(), **kw)  # type: ignore[arg-type]
    workers = app.start_workers()
    assert workers is not None
    started.append(workers)
    return app


def wait(app: DocChat, job_id: str, until: Callable[[Job], bool] = lambda j: j.finished,
         timeout: float = 30) -> Job:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = app.job(job_id)
        if until(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never got there: {app.job(job_id)}")


def test_submit_and_finish(job_settings: Settings, running: list[Workers]) -> None:
    app = engine_with_workers(job_settings, running)
    job = app.submit_upload([("cats.md", CATS), ("dogs.md", DOGS)], collection="pets")
    assert job.status in ("queued", "running")
    assert [f.name for f in job.files] == ["cats.md", "dogs.md"]
    assert (job_settings.data_dir / "uploads" / job.files[0].sha256).read_bytes() == CATS
    done = wait(app, job.id)
    assert done.status == DONE, done
    assert [f.status for f in done.files] == ["indexed", "indexed"]
    assert all(f.doc_id and f.progress == 1.0 for f in done.files)
    assert sorted(d.name for d in app.documents("pets")) == ["cats.md", "dogs.md"]
    assert [j.id for j in app.jobs()] == [job.id]
    assert done.to_dict()["files"][0]["name"] == "cats.md"
    # The bytes were only kept for the job. They are removed right after its end is
    # saved (an end saved first survives a crash between the two), so a poll can see
    # "done" a moment before they are gone (clean clone, 2026-12-07).
    uploads = job_settings.data_dir / "uploads"
    deadline = time.monotonic() + 10
    while list(uploads.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list(uploads.iterdir())
    with pytest.raises(JobNotFoundError):
        app.job("nope")
    assert app.start_workers() is running[0]  # once per engine


def test_per_file_progress(job_settings: Settings, running: list[Workers]) -> None:
    app = engine_with_workers(job_settings, running, SlowEmbedder(delay=0.1))
    job = app.submit_upload([("a.md", paragraphs(6, "alpha")), ("b.md", paragraphs(6, "beta"))])
    seen: set[tuple[str, str]] = set()

    def record(j: Job) -> bool:
        seen.update((f.name, f.message) for f in j.files if f.status == "running")
        return j.finished

    done = wait(app, job.id, record)
    assert done.status == DONE
    messages = {m for _, m in seen}
    assert any(m.startswith("embedding ") and m.endswith(" chunks") for m in messages), seen
    assert {n for n, m in seen if m.startswith("embedding")} == {"a.md", "b.md"}  # each file's own


def test_cancel(job_settings: Settings, running: list[Workers]) -> None:
    app = engine_with_workers(job_settings, running, SlowEmbedder(delay=0.2))
    # Eight files of 0.8 s each, two embedded at once: 3.2 s to write them all, against
    # about 1.2 s for the cancel to be seen (the record's save, then the heartbeat's read).
    files = [(f"f{i}.md", paragraphs(4, f"word{i}")) for i in range(8)]
    job = app.submit_upload(files)
    wait(app, job.id, lambda j: j.status == "running" and j.files[0].message.startswith("embed"))
    app.cancel_job(job.id)
    done = wait(app, job.id)
    assert done.status == CANCELLED
    assert CANCELLED in [f.status for f in done.files]
    assert len(app.documents()) < 8
    # A queued job is cancelled at once (no worker takes it: a queue of its own).
    queue = JobQueue(job_settings)
    queued = queue.submit(LOCAL, "other", [Upload("x.md", CATS)])
    assert app.cancel_job(queued.id).status == CANCELLED


def test_a_dead_worker_s_job_is_taken_again_when_its_lease_expires(
    job_settings: Settings, running: list[Workers]
) -> None:
    # Two consumer threads; the first embedding kills the thread running it.
    settings = replace(job_settings, workers=2)
    app = engine_with_workers(settings, running, SlowEmbedder(die_on=1))
    job = app.submit_upload([("cats.md", CATS), ("dogs.md", DOGS)])
    done = wait(app, job.id)
    assert done.status == DONE and done.attempt == 1, done
    assert sorted(d.name for d in app.documents()) == ["cats.md", "dogs.md"]


def test_restart_resumes_an_unfinished_job(job_settings: Settings, running: list[Workers]) -> None:
    settings = replace(job_settings, job_lease=3.0)
    dying = SlowEmbedder(die_for="Dogs bark")
    first = engine_with_workers(settings, running, dying)
    job = first.submit_upload([("cats.md", CATS), ("dogs.md", DOGS), ("owls.md", OWLS)])
    # The second file's embedding stops the worker in the middle of the job; the app
    # stops before the job's lease is over.
    wait(first, job.id, lambda j: dying.died.is_set(), timeout=10)
    running.pop().stop()
    assert first.job(job.id).status == "running"
    # A queued job too: submitted while nothing consumed the queue (as the CLI does).
    late = [Upload("late.md", b"# Late\n\nLate text here.\n")]
    waiting = JobQueue(settings).submit(LOCAL, "default", late)
    again = engine_with_workers(settings, running, store=first.services.store)  # the next start
    done = wait(again, job.id)
    assert done.status == DONE and done.attempt == 1, done
    # Files are written in order, so neither dogs.md nor owls.md was. cats.md was, if
    # it was prepared before dogs.md died: then it is found there, not indexed twice.
    assert [f.status for f in done.files][1:] == ["indexed", "indexed"]
    assert done.files[0].status in ("indexed", "unchanged")
    assert wait(again, waiting.id).status == DONE
    names = sorted(d.name for d in again.documents())
    assert names == ["cats.md", "dogs.md", "late.md", "owls.md"]


def test_ingest_is_idempotent(job_settings: Settings, running: list[Workers]) -> None:
    embedder = HashEmbedder()
    app = engine_with_workers(job_settings, running, embedder)
    app.ingest("cats.md", CATS)
    calls = embedder.calls
    # A half-written document: its record pending and only some chunks stored, as a
    # worker killed while writing leaves it.
    app.ingest("dogs.md", DOGS, collection="scratch")
    [full] = app.documents("scratch")
    chunks = app.chunks(full.doc_id, collection="scratch")
    vectors = app.services.store.chunks_by_id("scratch", [c.id for c in chunks])[1]
    app.services.store.begin_document("default", replace(full, status="pending"))
    app.services.store.add_chunks("default", chunks[:1], vectors[:1])
    job = app.submit_upload([("cats.md", CATS), ("dogs.md", DOGS)])
    done = wait(app, job.id)
    assert [f.status for f in done.files] == ["unchanged", "indexed"], done
    assert embedder.calls == calls + 2  # dogs.md only (once for "scratch", once here)
    docs = {d.name: d for d in app.documents()}
    assert sorted(docs) == ["cats.md", "dogs.md"]
    stored = app.chunks(docs["dogs.md"].doc_id)
    assert [c.index for c in stored] == list(range(len(chunks)))  # none lost, none twice
    assert app.services.store.count_chunks("default") == sum(d.chunks for d in docs.values())


def test_bad_file_is_rejected_with_its_reason_and_the_others_finish(
    job_settings: Settings, running: list[Workers]
) -> None:
    app = engine_with_workers(job_settings, running)
    job = app.submit_upload([("cats.md", CATS), ("tool.bin", b"\x00\x01binary"), ("dogs.md", DOGS)])
    done = wait(app, job.id)
    assert done.status == DONE
    assert [f.status for f in done.files] == ["indexed", REJECTED, "indexed"]
    bad = done.files[1]
    assert bad.error.startswith("tool.bin: ") and len(bad.error) > len("tool.bin: "), bad
    assert done.summary() == "2 indexed, 1 rejected of 3 file(s)"
    only_bad = wait(app, app.submit_upload([("x.bin", b"\x00\x00")]).id)
    assert only_bad.status == FAILED


def test_access_rules(job_settings: Settings) -> None:
    """Without workers (jobs run as submitted): a reader may not submit, others' jobs
    are not found, an administrator sees every job."""
    settings = replace(job_settings, workers=0, auth="accounts")
    app = DocChat.open(settings, embedder=HashEmbedder())
    accounts = Accounts(app.services.records)
    ann, bob = (accounts.add(n, "correct horse").user for n in ("ann", "bob"))
    root = accounts.add("root", "correct horse", admin=True).user
    job = app.as_user(ann).submit_upload([("cats.md", CATS)], collection="ann-notes")
    assert job.status == DONE and job.user == ann.id  # ran before the submit returned
    with pytest.raises(AccessDeniedError, match="taken"):
        app.as_user(bob).submit_upload([("dogs.md", DOGS)], collection="ann-notes")
    app.as_user(ann).share("ann-notes", Sharing(ann.id, readers=frozenset({bob.id})))
    assert app.as_user(bob).role("ann-notes") == READER
    with pytest.raises(AccessDeniedError, match="not add to it"):
        app.as_user(bob).submit_upload([("dogs.md", DOGS)], collection="ann-notes")
    with pytest.raises(JobNotFoundError):
        app.as_user(bob).job(job.id)
    with pytest.raises(JobNotFoundError):
        app.as_user(bob).cancel_job(job.id)
    assert app.as_user(bob).jobs() == []
    assert [j.id for j in app.as_user(root).jobs()] == [job.id]


def test_concurrent_creates_of_one_collection_make_one(job_settings: Settings) -> None:
    """Embedded mode: threads (as workers) all ensuring one new collection."""
    app = DocChat.open(job_settings, embedder=HashEmbedder())
    errors: list[Exception] = []

    def ensure() -> None:
        try:
            app.ensure_collection("new")
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=ensure) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and app.services.store.collection_names() == ["new"]
