"""Tuning job records and their runs on the real queue, without a model: the ledger's
conditional updates on SQLite and on a real PostgreSQL, a store at migration 0002
upgraded with `tune_jobs`, and the run (progress, Cancel, failures, a stopped worker)
with a stand-in for the tuning flow, so that only the bookkeeping is under test.

The flow itself, with a real model, is in test_tuning.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command

from rag.core.errors import RagError, TuningCancelled
from rag.core.settings import Settings
from rag.jobs.queue import JobQueue
from rag.jobs.run import NO_USER
from rag.jobs.tune_records import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    REFUSED,
    RUNNING,
    WORKER_STOPPED,
    TuneJob,
    TuneLedger,
    TuneRequest,
)
from rag.jobs.tune_run import Report, TuneOutcome
from rag.records.database import Database, database_url, open_database
from rag.records.migrate import alembic_config, upgrade
from rag.team.access import LOCAL, User

DAY = 86_400.0


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    return Settings(data_dir=tmp_path / "data", database_url=url, workers=0, job_lease=5.0)


def _job(job_id: str, at: float = 1.0, user: str = "u1") -> TuneJob:
    return TuneJob(job_id, user, "notes", "pseudo", QUEUED, created=at, updated=at)


def test_the_ledger_changes_a_record_only_from_the_state_it_names(settings: Settings) -> None:
    ledger = TuneLedger(open_database(settings))
    request = TuneRequest((("What do cats do?", "d1:0"),), max_steps=2)
    ledger.insert(_job("t1"), request)
    assert ledger.request("t1") == request and ledger.get("t1").status == QUEUED
    running = ledger.claim("t1", "host:1", lease=60.0)
    assert running is not None and running.status == RUNNING and running.worker == "host:1"
    assert ledger.claim("t1", "host:2", lease=60.0) is None  # one worker wins
    step = TuneJob(**{**running.to_dict(), "stage": "training", "progress": 0.5})
    assert ledger.save(step, lease_until=None) is False  # saved; not asked to stop
    assert ledger.get("t1").stage == "training"
    assert ledger.cancel("t1").cancel_requested  # running: asked to stop
    assert ledger.save(step, lease_until=None) is True
    # Asked to stop, the run ended "failed": it ends cancelled.
    ended = ledger.end(step, FAILED, "failed", "boom")
    assert ended is not None and ended.status == CANCELLED and ended.cancel_requested
    # An ended record is never rewritten.
    assert ledger.save(step, lease_until=None) is None
    assert ledger.end(step, DONE, "done") is None
    assert ledger.cancel("t1").status == CANCELLED

    ledger.insert(_job("t2", at=2.0), TuneRequest())
    assert ledger.cancel("t2").status == CANCELLED  # queued: ends at once
    assert ledger.claim("t2", "host:1", lease=60.0) is None

    # A cancel that comes after the swap does not undo it: the job ends done.
    ledger.insert(_job("t3", at=3.0), TuneRequest())
    claimed = ledger.claim("t3", "host:1", lease=60.0)
    assert claimed is not None
    ledger.cancel("t3")
    swapped = ledger.end(claimed, DONE, "swapped in")
    assert swapped is not None and swapped.status == DONE and swapped.progress == 1.0

    assert [j.id for j in ledger.listing(None, "notes", 10)] == ["t3", "t2", "t1"]
    assert ledger.listing("someone-else", None, 10) == []
    assert ledger.prune(time.time() + DAY) == 3 and ledger.listing(None, None, 10) == []


def test_a_job_whose_worker_stopped_fails_and_says_so(settings: Settings) -> None:
    ledger = TuneLedger(open_database(settings))
    for job_id in ("gone", "gone-cancelled"):
        ledger.insert(_job(job_id), TuneRequest())
        ledger.claim(job_id, "host:1", lease=-1.0)  # its lease is over at once
    ledger.cancel("gone-cancelled")
    ended = {j.id: j for j in ledger.fail_expired(time.time())}
    assert ended["gone"].status == FAILED and ended["gone"].error == WORKER_STOPPED
    assert ended["gone-cancelled"].status == CANCELLED
    assert ledger.fail_expired(time.time()) == []  # one watcher gets each


def test_a_store_at_0002_upgrades_with_the_tune_jobs_table(settings: Settings) -> None:
    db = Database(database_url(settings))
    db.write(lambda c: command.upgrade(alembic_config(c), "0002"))
    upgrade(db, Path(settings.data_dir))  # to head, as a start of the new release does
    ledger = TuneLedger(db)
    ledger.insert(_job("t1"), TuneRequest())
    assert ledger.get("t1").status == QUEUED


# -- runs on the queue (SQLite; workers 0: a job runs before its submit returns) ----------

Flow = Callable[[User, TuneJob, TuneRequest, Report, Callable[[], bool]], TuneOutcome]


def _queue(tmp_path: Path, flow: Flow, users: Callable[[str], User | None] | None = None
           ) -> JobQueue:  # fmt: skip
    settings = Settings(data_dir=tmp_path / "data", workers=0, job_lease=5.0)
    return JobQueue(settings, runner=lambda *a: [], users=users or (lambda uid: LOCAL),
                    tune_runner=flow)  # fmt: skip


def test_a_job_runs_its_flow_with_progress_before_submit_returns(tmp_path: Path) -> None:
    seen: list[tuple[str, TuneRequest]] = []

    def flow(user: User, job: TuneJob, request: TuneRequest, report: Report,
             should_stop: Callable[[], bool]) -> TuneOutcome:  # fmt: skip
        seen.append((user.id, request))
        report("training", 0.5, "step 1/2")
        report("saving", 0.0, "saving", "tuned:0123456789ab")
        return TuneOutcome(REFUSED, "tuned:0123456789ab", "hit@5 1.00 -> 1.00: not better")

    queue = _queue(tmp_path, flow)
    request = TuneRequest((("q", "d1:0"),), max_steps=1)
    job = queue.tunes.submit(LOCAL, "notes", "pairs", request)
    assert seen == [(LOCAL.id, request)]
    assert job.status == REFUSED and job.model == "tuned:0123456789ab" and job.finished
    assert job.message == "hit@5 1.00 -> 1.00: not better" and job.progress == 1.0


def test_cancel_stops_a_running_job_at_its_next_check(tmp_path: Path) -> None:
    def flow(user: User, job: TuneJob, request: TuneRequest, report: Report,
             should_stop: Callable[[], bool]) -> TuneOutcome:  # fmt: skip
        report("training", 0.0, "step 0/1000")
        deadline = time.monotonic() + 60
        while not should_stop():  # as the trainer asks after each step
            assert time.monotonic() < deadline, "the cancel never reached the run"
            time.sleep(0.02)
        raise TuningCancelled("cancelled")

    queue = _queue(tmp_path, flow)
    done: list[TuneJob] = []
    runner = threading.Thread(
        target=lambda: done.append(queue.tunes.submit(LOCAL, "notes", "pseudo", TuneRequest()))
    )
    runner.start()
    while not (jobs := queue.tunes.jobs()) or jobs[0].stage != "training":
        time.sleep(0.05)  # (its heartbeat saves the stage within half a second)
    queue.tunes.cancel(jobs[0].id)
    runner.join(timeout=60)
    assert done and done[0].status == CANCELLED and done[0].cancel_requested


def test_a_failing_flow_or_a_removed_user_fails_the_job(tmp_path: Path) -> None:
    def flow(user: User, job: TuneJob, request: TuneRequest, report: Report,
             should_stop: Callable[[], bool]) -> TuneOutcome:  # fmt: skip
        raise RagError("Tuning needs questions about at least 2 documents.")

    failed = _queue(tmp_path / "a", flow).tunes.submit(LOCAL, "notes", "pseudo", TuneRequest())
    assert failed.status == FAILED and "at least 2 documents" in failed.error
    gone = _queue(tmp_path / "b", flow, users=lambda uid: None)
    assert gone.tunes.submit(LOCAL, "notes", "pseudo", TuneRequest()).error == NO_USER


def test_the_queue_s_watcher_fails_a_job_whose_worker_stopped(tmp_path: Path) -> None:
    queue = _queue(tmp_path, lambda *a: pytest.fail("not run"))
    ledger = queue.tunes.ledger
    ledger.insert(_job("t1", at=time.time()), TuneRequest())
    ledger.claim("t1", "elsewhere:1", lease=-1.0)
    queue.requeue_expired()
    assert queue.tunes.job("t1").status == FAILED
    assert queue.prune(time.time() + 30 * DAY) == 1
