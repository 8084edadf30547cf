"""The job races, made deterministic, on SQLite and on a real PostgreSQL record store.

- A cancel between a worker's read of the queued record and its claim: the cancel
  wins, the job's files are not indexed, and the cancel stays recorded.
- A job's cleanup deciding which uploaded bytes are still needed while another job
  with the same bytes is submitted: those bytes survive and the second job indexes
  them.

Each step runs where the test puts it: a hook on the queue's read (the user cancels
right after the worker read the record), and a barrier in the cleanup's unlink (the
cleanup has decided; the second submit comes now).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import DocChat, Settings, Upload
from rag.jobs import CANCELLED, DONE, Job
from tests.fixtures.fakes import HashEmbedder

CATS = b"# Cats\n\nCats sleep sixteen hours a day. They purr when content.\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def race_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    # workers=1 but none started: the queue is consumed only where the test says.
    return Settings(data_dir=tmp_path / "data", min_score=0.0, workers=1, job_lease=5.0,
                    database_url=url)  # fmt: skip


@pytest.fixture
def app(race_settings: Settings) -> Iterator[DocChat]:
    app = DocChat.open(race_settings, embedder=HashEmbedder())
    yield app
    app.close()


def wait_done(app: DocChat, job_id: str, timeout: float = 30) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = app.job(job_id)
        if job.finished:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never ended: {app.job(job_id)}")


def test_a_cancel_wins_over_a_late_claim(app: DocChat, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another queued job holds the same bytes, so they stay on disk after the cancel:
    # a late claim would then index the cancelled job's file.
    job = app.submit_upload([Upload("cats.md", CATS)], collection="pets")
    app.submit_upload([Upload("cats.md", CATS)], collection="other")
    queue = app.services.uploads.queue
    read = queue.job
    cancelled: list[Job] = []

    def read_then_cancel(job_id: str) -> Job:
        found = read(job_id)
        if job_id == job.id and not cancelled:
            cancelled.append(found)  # (first: the cancel reads the record too)
            app.cancel_job(job_id)  # the user cancels: the worker has read "queued"
        return found

    monkeypatch.setattr(queue, "job", read_then_cancel)
    queue._execute(job.id, 0)  # the worker's task: read the record, then claim the job
    monkeypatch.undo()
    assert cancelled and cancelled[0].status == "queued"  # the hook ran where meant
    after = app.job(job.id)
    assert after.status == CANCELLED, after
    assert [f.status for f in after.files] == [CANCELLED]
    store = app.services.store
    assert not store.has_collection("pets") or app.documents("pets") == []


def test_bytes_another_job_needs_survive_a_cleanup(
    app: DocChat, race_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = app.submit_upload([Upload("cats.md", CATS)], collection="pets")
    path = Path(race_settings.data_dir) / "uploads" / hashlib.sha256(CATS).hexdigest()
    assert path.read_bytes() == CATS
    decided, go_on = threading.Event(), threading.Event()
    unlink = Path.unlink

    def paused_unlink(self: Path, missing_ok: bool = False) -> None:
        if self == path and threading.current_thread() is canceller:
            decided.set()  # the cleanup has decided that no other job needs the bytes
            go_on.wait(30)
        unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", paused_unlink)
    canceller = threading.Thread(target=app.cancel_job, args=(first.id,))
    canceller.start()
    assert decided.wait(30)
    second: list[Job] = []
    submitter = threading.Thread(
        target=lambda: second.append(app.submit_upload([Upload("cats.md", CATS)], "pets"))
    )
    submitter.start()
    # Before the fix the second submit ends here at once (the bytes "exist"); after it,
    # it waits for the cleanup to end. Either way the cleanup goes on now.
    submitter.join(1.0)
    go_on.set()
    canceller.join(30)
    submitter.join(30)
    monkeypatch.undo()
    assert app.job(first.id).status == CANCELLED
    [job] = second
    assert path.read_bytes() == CATS  # the second job's bytes survived
    assert app.start_workers() is not None
    done = wait_done(app, job.id)
    assert done.status == DONE, done
    assert [f.status for f in done.files] == ["indexed"]
    assert [d.name for d in app.documents("pets")] == ["cats.md"]
