"""Upload job records in the record store, on SQLite and on a real PostgreSQL: each
change is a conditional update that the second of two racers loses, a finished
record is never rewritten, old ended records are pruned, listing is a query, and a
job runs with its user's rights as they are when it runs.

The steps are called in the order each test names (no timing); the races across
processes and threads are in test_job_races.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from rag import DocChat, Settings, Upload
from rag.core.errors import JobNotFoundError
from rag.jobs import CANCELLED, DONE, FAILED, QUEUED, RUNNING, Job, JobFile, JobQueue
from rag.jobs.ledger import Ledger
from rag.jobs.run import NO_USER
from rag.records import Database
from rag.records.schema import job_secrets, upload_jobs
from rag.team.access import LOCAL
from rag.team.accounts import Accounts
from tests.fixtures.fakes import HashEmbedder

CATS = b"# Cats\n\nCats sleep sixteen hours a day. They purr when content.\n"
DOGS = b"# Dogs\n\nDogs bark at strangers and love long walks in the park.\n"
DAY = 86_400.0


@pytest.fixture(params=["sqlite", "postgresql"])
def job_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    # workers=1 but none started: jobs run only where a test runs them.
    return Settings(data_dir=tmp_path / "data", min_score=0.0, workers=1, job_lease=5.0,
                    database_url=url, auth="accounts")  # fmt: skip


@pytest.fixture
def app(job_settings: Settings) -> Iterator[DocChat]:
    app = DocChat.open(job_settings, embedder=HashEmbedder())
    yield app
    app.close()


@pytest.fixture
def queue(app: DocChat) -> JobQueue:
    return app.services.uploads.queue


def ledger_of(queue: JobQueue) -> Ledger:
    return queue.ledger


def record(job_id: str, user: str, at: float, status: str = DONE, sha: str = "ab") -> Job:
    return Job(job_id, user, "notes", status, (JobFile("a.md", sha, 3, status="indexed"),),
               at, at)  # fmt: skip


# -- conditional updates ------------------------------------------------------------------


def test_one_claim_wins_and_a_cancel_wins_over_a_late_claim(queue: JobQueue) -> None:
    ledger = ledger_of(queue)
    job = queue.submit(LOCAL, "notes", [Upload("cats.md", CATS)])
    assert ledger.claim(job.id, 0, "w1", 5.0) is not None
    assert ledger.claim(job.id, 0, "w2", 5.0) is None  # the second worker loses
    assert ledger.claim(job.id, 1, "w2", 5.0) is None  # a message of another attempt
    assert queue.job(job.id).worker == "w1"

    late = queue.submit(LOCAL, "notes", [Upload("dogs.md", DOGS)])
    read = queue.job(late.id)  # a worker read "queued"...
    assert read.status == QUEUED
    cancelled = queue.cancel(late.id)  # ...the user cancels...
    assert ledger.claim(late.id, read.attempt, "w1", 5.0) is None  # ...the claim loses
    after = queue.job(late.id)
    assert after == cancelled
    assert after.status == CANCELLED and after.cancel_requested
    assert [f.status for f in after.files] == [CANCELLED]


def test_a_finished_record_is_never_rewritten(queue: JobQueue) -> None:
    ledger = ledger_of(queue)
    job = queue.submit(LOCAL, "notes", [Upload("cats.md", CATS)])
    running = ledger.claim(job.id, 0, "w1", 5.0)
    assert running is not None and running.status == RUNNING
    done = ledger.end(running, DONE, "")
    assert done is not None and done.status == DONE
    assert queue.job(job.id) == done
    assert ledger.end(running, FAILED, "late") is None
    assert ledger.save(replace(running, updated=time.time()), time.time() + 5) is None
    assert ledger.state(running) is None
    assert queue.cancel(job.id) == done
    assert queue.requeue_expired(now=time.time() + 3600) == []
    assert queue.job(job.id) == done


def test_a_running_job_s_cancel_is_read_by_its_run_and_wins_at_its_end(queue: JobQueue) -> None:
    ledger = ledger_of(queue)
    job = queue.submit(LOCAL, "notes", [Upload("cats.md", CATS)])
    running = ledger.claim(job.id, 0, "w1", 5.0)
    assert running is not None
    assert ledger.save(running, None) is False  # not asked to stop
    asked = queue.cancel(job.id)
    assert asked.status == RUNNING and asked.cancel_requested
    assert ledger.state(running) is True
    assert ledger.save(running, None) is True  # the heartbeat learns it
    ended = ledger.end(running, DONE, "")  # a run that finished its files meanwhile
    assert ended is not None and ended.status == CANCELLED
    assert queue.job(job.id).cancel_requested


def test_an_expired_lease_is_taken_back_by_one_watcher(
    queue: JobQueue, job_settings: Settings
) -> None:
    ledger = ledger_of(queue)
    other = JobQueue(job_settings, queue.ledger.db)  # a watcher in another process
    job = queue.submit(LOCAL, "notes", [Upload("cats.md", CATS), Upload("dogs.md", DOGS)])
    running = ledger.claim(job.id, 0, "w1", 5.0)
    assert running is not None
    files = (replace(running.files[0], status="indexed"),
             replace(running.files[1], status=RUNNING))  # fmt: skip
    assert ledger.save(replace(running, files=files), None) is False
    later = time.time() + 60
    assert queue.requeue_expired(now=later) == [job.id]
    assert other.requeue_expired(now=later) == []
    again = queue.job(job.id)
    assert (again.status, again.attempt, again.worker) == (QUEUED, 1, "")
    assert [f.status for f in again.files] == ["indexed", QUEUED]
    assert ledger.save(running, None) is None  # the old run learns it lost the job
    assert ledger.end(running, DONE, "") is None
    taken = ledger.claim(job.id, 1, "w2", 5.0)
    assert taken is not None and ledger.end(taken, DONE, "") is not None

    # A running job cancelled, whose worker then stopped: it ends, as cancelled.
    stopped = queue.submit(LOCAL, "notes", [Upload("x.md", b"# X\n\nx text\n")])
    assert ledger.claim(stopped.id, 0, "w1", 5.0) is not None
    queue.cancel(stopped.id)
    assert queue.requeue_expired(now=time.time() + 60) == []
    assert queue.job(stopped.id).status == CANCELLED


def test_secrets_go_with_the_job_s_end(queue: JobQueue) -> None:
    ledger = ledger_of(queue)
    job = queue.submit(LOCAL, "notes", [Upload("a.pdf", b"%PDF-1.4 x", password="pw")])
    assert ledger.secrets(job.id) == {"0": "pw"}
    assert "pw" not in str(queue.job(job.id).to_dict())
    queue.cancel(job.id)
    assert ledger.secrets(job.id) == {}


# -- bytes, pruning, listing ----------------------------------------------------------------


def test_bytes_stay_while_an_unfinished_job_needs_them(
    queue: JobQueue, job_settings: Settings
) -> None:
    uploads = Path(job_settings.data_dir) / "uploads"
    first = queue.submit(LOCAL, "notes", [Upload("cats.md", CATS)])
    second = queue.submit(LOCAL, "other", [Upload("cats.md", CATS), Upload("dogs.md", DOGS)])
    sha_cats, sha_dogs = (f.sha256 for f in second.files)
    queue.cancel(first.id)
    assert (uploads / sha_cats).read_bytes() == CATS  # the second job needs them
    queue.cancel(second.id)
    assert not (uploads / sha_cats).exists() and not (uploads / sha_dogs).exists()


def test_old_ended_records_are_pruned(queue: JobQueue, job_settings: Settings) -> None:
    ledger = ledger_of(queue)
    now = time.time()
    old = now - 31 * DAY
    for job in (record("old-done", "u1", old), record("old-failed", "u1", old, FAILED),
                record("old-queued", "u1", old, QUEUED), record("old-running", "u1", old, RUNNING),
                record("recent", "u1", now - DAY)):  # fmt: skip
        ledger.insert(job, {}, {"0": "pw"})
    # Bytes a crash kept after a job's end (saved, then the process stopped).
    left = Path(job_settings.data_dir) / "uploads" / "ab"
    left.parent.mkdir(parents=True, exist_ok=True)
    left.write_bytes(b"abc")
    ledger.insert(record("old-cancelled", "u1", old, CANCELLED, sha="cd"), {"cd": b"cd"}, {})

    assert queue.prune(now=now) == 3
    kept = {j.id for j in queue.jobs()}
    assert kept == {"old-queued", "old-running", "recent"}
    for gone in ("old-done", "old-failed", "old-cancelled"):
        with pytest.raises(JobNotFoundError):
            queue.job(gone)
        assert ledger.secrets(gone) == {}
    assert ledger.secrets("old-queued") == {"0": "pw"}
    assert left.exists()  # an unfinished job still names these bytes
    assert not (left.parent / "cd").exists()
    assert queue.prune(now=now) == 0


def test_workers_prune_when_they_start(app: DocChat, queue: JobQueue) -> None:
    ledger_of(queue).insert(record("ancient", "u1", time.time() - 400 * DAY), {}, {})
    workers = app.start_workers()
    assert workers is not None
    deadline = time.monotonic() + 10
    while queue.jobs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert queue.jobs() == []


def test_listing_is_the_newest_of_the_user_s_records(app: DocChat, queue: JobQueue) -> None:
    accounts = Accounts(app.services.records)
    ann = accounts.add("ann", "correct horse").user
    bob = accounts.add("bob", "correct horse").user
    base = time.time() - 10 * DAY
    rows = [
        {"id": f"j{i:05d}", "user_id": ann.id if i % 2 else bob.id, "collection": "notes",
         "status": DONE, "files": [], "created": base + i, "updated": base + i}
        for i in range(2000)
    ]  # fmt: skip
    db: Database = app.services.records
    db.write(lambda c: c.execute(insert(upload_jobs), rows))
    assert db.read(lambda c: c.execute(select(func.count()).select_from(upload_jobs)).scalar())
    newest = queue.jobs(limit=5)
    assert [j.id for j in newest] == ["j01999", "j01998", "j01997", "j01996", "j01995"]
    assert [j.id for j in queue.jobs(ann.id, limit=3)] == ["j01999", "j01997", "j01995"]
    mine = app.as_user(bob).jobs()
    assert len(mine) == 100 and mine[0].id == "j01998"
    assert all(j.user == bob.id for j in mine)
    assert [j.created for j in mine] == sorted((j.created for j in mine), reverse=True)
    assert len(app.jobs()) == 100  # single-user mode's user is the administrator


# -- a job's user, as they are when it runs --------------------------------------------------


def test_a_job_runs_with_its_user_s_rights_as_they_are_when_it_runs(
    app: DocChat, queue: JobQueue
) -> None:
    accounts = Accounts(app.services.records)
    ann = accounts.add("ann", "correct horse", admin=True).user
    bob = accounts.add("bob", "correct horse").user
    carol = accounts.add("carol", "correct horse").user
    app.as_user(bob).ingest("dogs.md", DOGS, collection="bob-notes")
    # Queued by an administrator into bob's collection; run after she was demoted.
    queued = app.as_user(ann).submit_upload([("cats.md", CATS)], collection="bob-notes")
    accounts.update("ann", admin=False)
    queue._execute(queued.id, 0)
    failed = queue.job(queued.id)
    assert failed.status == FAILED and "bob-notes" in failed.error, failed
    assert [d.name for d in app.as_user(bob).documents("bob-notes")] == ["dogs.md"]

    # Queued by a user who is removed, or disabled, before it runs.
    for who, change in ((carol, lambda: accounts.remove("carol")),
                        (bob, lambda: accounts.update("bob", disabled=True))):  # fmt: skip
        job = app.as_user(who).submit_upload([("cats.md", CATS)], collection=f"{who.name}-x")
        change()
        queue._execute(job.id, 0)
        ended = queue.job(job.id)
        assert (ended.status, ended.error) == (FAILED, NO_USER), ended
        assert ended.files[0].error == f"cats.md: {NO_USER}"
        assert not app.services.store.has_collection(f"{who.name}-x")


def test_no_job_secrets_outlive_their_job(app: DocChat, queue: JobQueue) -> None:
    db: Database = app.services.records
    job = queue.submit(LOCAL, "notes", [Upload("a.md", CATS, password="pw")])
    queue._execute(job.id, 0)
    assert queue.job(job.id).status == DONE
    assert db.read(lambda c: c.execute(select(job_secrets)).all()) == []
