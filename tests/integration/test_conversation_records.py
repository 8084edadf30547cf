"""Conversations and fine-tuning job records in the record store, on SQLite and on a
real PostgreSQL: appends from several processes to one conversation at once all kept
(none overwrites another, each after the one before it), collection renames and
deletes of every user's conversations in one step, job records merged in one
transaction and listed per user."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import Connection, update

from rag import Settings
from rag.components.conversations import Conversations, failed_answer
from rag.finetune.jobs import FineTuneJobs, JobInfo
from rag.records.database import database_url, open_database
from rag.records.schema import finetune_jobs
from tests.fixtures.paths import ROOT

PROCESSES, TURNS = 3, 20
LLM = SimpleNamespace(server="fake-server")  # job records never call the server


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    return Settings(data_dir=tmp_path / "data", database_url=url)


_APPEND = """
import sys, time
from rag.components.conversations import Conversations, failed_answer
from rag.records.database import Database
url, who, start, turns = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
convs = Conversations(Database(url)).for_user("u-shared")
cid = convs.latest("pets").id
time.sleep(max(0.0, start - time.time()))  # every process starts its appends at once
for i in range(turns):
    question = f"p{who}-{i}?"
    convs.append(cid, question, failed_answer(question, "x"))
"""


@pytest.mark.slow  # starting the processes takes seconds
def test_appends_from_several_processes_are_all_kept(settings: Settings) -> None:
    # Migrated once, and the conversation made, before the processes start.
    Conversations(open_database(settings)).for_user("u-shared").create("pets")
    url = database_url(settings)
    # Plain subprocesses (not multiprocessing's spawn, which re-runs whatever `__main__`
    # the test session has, e.g. the app after a page test).
    start = time.time() + 5
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _APPEND, url, str(n), str(start), str(TURNS)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
    # Every turn on the branch shown: each append went after the last one committed.
    turns = Conversations(open_database(settings)).for_user("u-shared").load("pets").turns
    assert len(turns) == PROCESSES * TURNS  # 0 lost
    assert [t.parent for t in turns] == [None] + [t.id for t in turns[:-1]]
    for n in range(PROCESSES):  # each process's turns in the order it appended them
        mine = [t.question for t in turns if t.question.startswith(f"p{n}-")]
        assert mine == [f"p{n}-{i}?" for i in range(TURNS)]


def test_renames_and_deletes_cover_every_user(settings: Settings) -> None:
    convs = Conversations(open_database(settings))
    ann, bob = convs.for_user("u-ann"), convs.for_user("u-bob")
    for who, name in ((ann, "a"), (bob, "a"), (bob, "b")):
        question = f"{who.owner} {name}?"
        who.append(who.create(name).id, question, failed_answer(question, "x"))
    convs.rename_collection("a", "b")
    assert [t.question for t in ann.load("b").turns] == ["u-ann a?"]
    bobs = {c.id: [t.question for t in bob.get(c.id).turns] for c in bob.list()}
    assert sorted(bobs.values()) == [["u-bob a?"], ["u-bob b?"]]  # both kept, now on "b"
    assert {c.collection for c in bob.list()} == {"b"}
    assert not ann.load("a").turns and not bob.load("a").turns
    convs.drop_collection("b")
    assert ann.list() == [] and bob.list() == []


def test_job_records_merge_in_one_step_and_are_per_user(settings: Settings) -> None:
    db = open_database(settings)
    ann = FineTuneJobs(LLM, db, "u-ann")  # type: ignore[arg-type]
    started = JobInfo("ftjob-1", "validating_files", "m", created=10.0, collection="pets",
                      examples=12)  # fmt: skip
    ann._record(started)

    def refresh(n: int) -> None:  # what only the server knows, from many threads at once
        ann._record(JobInfo("ftjob-1", f"running-{n}", "m", created=10.0))

    threads = [threading.Thread(target=refresh, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (job,) = ann.history()
    assert (job.collection, job.examples) == ("pets", 12)  # kept through every refresh
    assert job.status.startswith("running-")
    done = ann._record(JobInfo("ftjob-1", "succeeded", "m", fine_tuned_model="ft:m:1", created=10))
    assert done.collection == "pets" and ann.fine_tuned_models() == ["ft:m:1"]
    assert FineTuneJobs(LLM, db, "u-bob").history() == []  # type: ignore[arg-type]
    local = FineTuneJobs(LLM, db, "")  # type: ignore[arg-type]
    assert local.owner == "local" and local.history() == []


def test_a_damaged_job_record_hides_only_itself(settings: Settings) -> None:
    db = open_database(settings)
    jobs = FineTuneJobs(LLM, db, "u-ann")  # type: ignore[arg-type]
    for n in (1, 2):
        jobs._record(JobInfo(f"ftjob-{n}", "running", "m", created=float(n)))

    def damage(c: Connection) -> None:  # valid JSON (PostgreSQL checks), not a JobInfo
        c.execute(update(finetune_jobs).where(finetune_jobs.c.id == "ftjob-1")
                  .values(record={"status": "lost its id"}))  # fmt: skip

    db.write(damage)
    assert [j.id for j in jobs.history()] == ["ftjob-2"]
    assert jobs._record(JobInfo("ftjob-1", "failed", "m", created=1.0)).status == "failed"
    assert [j.id for j in jobs.history()] == ["ftjob-2", "ftjob-1"]
