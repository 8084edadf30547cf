"""Upgrade in place: a data dir written by the last release before the record store
(its JSON files, made here by that release's own writers, frozen in
tests/fixtures/release_json) is imported on the first open, on SQLite and on
PostgreSQL; every account, session, key, share, conversation and fine-tuning record
is checked after it, the old files are kept renamed, and a second open imports
nothing twice. rag/records/legacy.py is the import."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Connection, func, select

from rag import Answer, Chunk, Hit, Settings, Source
from rag.components.conversations import Conversations
from rag.core.errors import SignInError
from rag.finetune.jobs import FineTuneJobs
from rag.records import schema
from rag.records.database import Database, database_url, open_database
from rag.records.legacy import KEY, MARKER, LegacyImportError
from rag.records.migrate import alembic_config, upgrade
from rag.records.schema import LOCAL_ID
from rag.team.access import Sharing
from rag.team.accounts import Accounts
from rag.team.keys import ApiKeys
from rag.team.sharing import SharingStore
from tests.fixtures.release_json import accounts as r_accounts
from tests.fixtures.release_json import conversations as r_conversations
from tests.fixtures.release_json import jobs as r_jobs
from tests.fixtures.release_json import keys as r_keys
from tests.fixtures.release_json import sharing as r_sharing
from tests.fixtures.release_json.access import Sharing as OldSharing

PASSWORDS = {"admin": "admin-pass-1", "ann": "ann-pass-12", "bob": "bob-pass-12",
             "carol": "carol-new-12"}  # fmt: skip
LLM = SimpleNamespace(server="fake-server")  # job records never call the server


@dataclass
class Release:
    """What the release wrote, as the release itself reads it back."""

    tokens: dict[str, str]  # session tokens: admin, ann, bob (ended), expired
    keys: dict[str, str]  # ann, bob, dave (removed), old-carol, carol, local
    conversations: dict[tuple[str, str], list[tuple[Any, ...]]]  # (owner, collection)
    jobs: dict[str, list[r_jobs.JobInfo]]  # owner ("" single-user mode's) -> history


def _answer(question: str, text: str, *, file: str = "cats.pdf") -> Answer:
    chunk = Chunk(doc_id="d" * 64, file=file, index=2, text="Cats eat fish.", start=0, end=14,
                  page=3, section="Food", tokens=4)  # fmt: skip
    return Answer(text=text, mode="llm", question=question, query="cats eat", cited=(1,),
                  sources=(Source(n=1, hit=Hit(chunk=chunk, score=0.61234)),),
                  prompt_tokens=99, left_out=(3,))  # fmt: skip


def _turns(conv: Any) -> list[tuple[Any, ...]]:
    return [(t.question, t.answer, t.stopped, t.at) for t in conv.turns]


def write_release_data_dir(data: Path) -> Release:
    """A data dir as the release left it, made with its own code paths."""
    accounts = r_accounts.Accounts(data / "accounts.json")
    for name, admin in [("admin", True), ("ann", False), ("bob", False), ("dave", False)]:
        accounts.add(name, PASSWORDS.get(name, "dave-pass-12"), admin=admin)
    accounts.add("carol", "carol-old-12")
    keys = r_keys.ApiKeys(data / "api_keys.json")
    made = {who: keys.create(who, f"{who}'s")[1] for who in ("ann", "bob", "dave", "carol")}
    made["local"] = keys.create("local", "single-user mode")[1]
    tokens = {who: accounts.sign_in(who, PASSWORDS[who]) for who in ("admin", "ann", "bob")}
    past = r_accounts.Accounts(data / "accounts.json", clock=lambda: time.time() - 2 * 86400)
    tokens["expired"] = past.sign_in("ann", PASSWORDS["ann"])
    accounts.update("bob", disabled=True)  # ends bob's session
    convs = r_conversations.Conversations(data)
    convs.for_user("carol").append("team", "Old carol's question?", _answer("q", "old"))
    old_carol_job = r_jobs.JobInfo("ftjob-carol-old", "succeeded", "gpt-4o-mini",
                                   created=time.time())  # fmt: skip
    r_jobs.FineTuneJobs(LLM, data, "carol")._record(old_carol_job)  # type: ignore[arg-type]
    accounts.remove("dave")
    accounts.remove("carol")
    time.sleep(0.01)
    accounts.add("carol", PASSWORDS["carol"])  # someone else, with the same name
    made["old-carol"], made["carol"] = made["carol"], keys.create("carol")[1]
    tokens["carol"] = accounts.sign_in("carol", PASSWORDS["carol"])

    sharing = r_sharing.SharingStore(data / "sharing.json")
    sharing.set("ann-notes", OldSharing("ann", frozenset({"bob", "ghost"}), frozenset({"admin"})))
    sharing.set("team", OldSharing("local", everyone="reader"))
    sharing.set("dave-stuff", OldSharing("dave", readers=frozenset({"ann"})))
    sharing.set("both", OldSharing("admin", frozenset({"ann"}), frozenset({"ann"}), "editor"))

    convs.append("team", "Single-user question?", _answer("Single-user question?", "Fish [1]."))
    ann = convs.for_user("ann")
    ann.append("ann-notes", "What do cats eat?", _answer("What do cats eat?", "Fish [1]."))
    ann.append("ann-notes", "And dogs?", _answer("And dogs?", "Dogs ea", file="dogs.md"),
               stopped=True)  # fmt: skip
    ann.append("team", "Team question?", _answer("Team question?", "Yes [1]."))
    convs.for_user("dave").append("team", "Dave's question?", _answer("q", "dave"))
    convs.for_user("carol").append("team", "New carol's question?", _answer("q", "new"))
    (data / "conversations" / ("0" * 32 + ".json")).write_text("{damaged")

    jobs: dict[str, list[r_jobs.JobInfo]] = {}
    for owner, n in [("", 1), ("ann", 2), ("dave", 3), ("carol", 4)]:
        book = r_jobs.FineTuneJobs(LLM, data, owner)  # type: ignore[arg-type]
        start = r_jobs.JobInfo(
            f"ftjob-{n}",
            "validating_files",
            "gpt-4o-mini",
            created=time.time() + n,
            collection="team",
            examples=10 * n,
        )
        book._record(start)
        book._record(r_jobs.JobInfo(f"ftjob-{n}", "succeeded", "gpt-4o-mini",
                                    fine_tuned_model=f"ft:gpt-4o-mini:docchat:{n}",
                                    created=start.created, finished=start.created + 60,
                                    trained_tokens=1234))  # fmt: skip
        jobs[owner] = book.history()
    by_owner = {"local": "", "ann": "ann", "carol": "carol"}
    conversations = {
        (who, c): _turns(convs.for_user(owner).load(c))
        for who, owner in by_owner.items()
        for c in ("team", "ann-notes")
    }
    return Release(tokens, made, conversations, jobs)


@pytest.fixture(params=["sqlite", "postgresql"])
def upgraded(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Settings, Release]:
    data = tmp_path / "data"
    release = write_release_data_dir(data)
    monkeypatch.setenv("DOCCHAT_DATA_DIR", str(data))
    if request.param == "postgresql":
        monkeypatch.setenv("DOCCHAT_DATABASE_URL", request.getfixturevalue("pg_url"))
    else:
        monkeypatch.delenv("DOCCHAT_DATABASE_URL", raising=False)
    settings = Settings.from_env(secrets_path=None)
    assert settings.database_url.startswith("postgresql") == (request.param == "postgresql")
    return settings, release


def test_a_release_data_dir_is_imported_once(upgraded: tuple[Settings, Release]) -> None:
    settings, release = upgraded
    data = Path(settings.data_dir)
    db = open_database(settings)  # the first open of this release: migrates and imports

    # Accounts: names, roles, new random ids; passwords still work.
    accounts = Accounts(db)
    people = {a.name: a for a in accounts.list()}
    assert sorted(people) == ["admin", "ann", "bob", "carol"]  # dave was removed
    assert [n for n, a in people.items() if a.admin] == ["admin"]
    assert [n for n, a in people.items() if a.disabled] == ["bob"]
    assert all(a.id.startswith("u") and len(a.id) == 25 for a in people.values())
    assert len({a.id for a in people.values()}) == 4
    ids = {n: a.id for n, a in people.items()}
    for name in ("admin", "ann", "carol"):
        assert accounts.user_of(accounts.sign_in(name, PASSWORDS[name])).id == ids[name]  # type: ignore[union-attr]
    with pytest.raises(SignInError):
        accounts.sign_in("bob", PASSWORDS["bob"])  # disabled
    assert PasswordHasher().verify(people["bob"].password_hash, PASSWORDS["bob"])

    # Sessions: the unexpired ones of enabled users, now by id.
    tokens = release.tokens
    assert accounts.user_of(tokens["ann"]).id == ids["ann"]  # type: ignore[union-attr]
    assert accounts.user_of(tokens["admin"]).admin  # type: ignore[union-attr]
    assert accounts.user_of(tokens["carol"]).id == ids["carol"]  # type: ignore[union-attr]
    assert accounts.user_of(tokens["bob"]) is None  # ended when bob was disabled
    assert accounts.user_of(tokens["expired"]) is None

    # Keys: kept for their users; a removed user's never passes to anyone.
    keys = ApiKeys(db)
    of = {who: keys.user_of(key) for who, key in release.keys.items()}
    assert of == {"ann": ids["ann"], "bob": ids["bob"], "carol": ids["carol"],
                  "local": LOCAL_ID, "dave": None, "old-carol": None}  # fmt: skip

    # Shares: owners and people by id; `local` and removed owners: the administrators'.
    sharing = SharingStore(db)
    assert sharing.of("ann-notes") == Sharing(ids["ann"], frozenset({ids["bob"]}),
                                              frozenset({ids["admin"]}))  # fmt: skip
    assert sharing.of("team") == Sharing("", everyone="reader")
    assert sharing.of("dave-stuff") == Sharing("", readers=frozenset({ids["ann"]}))
    assert sharing.of("both") == Sharing(ids["admin"], editors=frozenset({ids["ann"]}),
                                         everyone="editor")  # fmt: skip

    # Conversations: every turn, sources included, each with its user; a removed user's
    # and the old carol's are not the new carol's.
    convs = Conversations(db)
    owners = {"local": LOCAL_ID, "ann": ids["ann"], "carol": ids["carol"]}
    expected = dict(release.conversations)
    old_carol, new_carol = expected[("carol", "team")]  # the release gave both to carol
    expected[("carol", "team")] = [new_carol]
    for (who, collection), turns in expected.items():
        assert _turns(convs.for_user(owners[who]).load(collection)) == turns, (who, collection)
    assert old_carol[0] == "Old carol's question?" and new_carol[0] == "New carol's question?"
    ann_notes = expected[("ann", "ann-notes")]
    assert [(t[0], t[2]) for t in ann_notes] == [("What do cats eat?", False), ("And dogs?", True)]
    assert ann_notes[1][1].sources[0].chunk.file == "dogs.md"  # sources came along
    assert expected[("local", "team")][0][0] == "Single-user question?"

    # Fine-tuning records, per user; the old carol's are not the new one's.
    for who, owner in [("local", ""), ("ann", "ann")]:
        history = FineTuneJobs(LLM, db, owners[who]).history()  # type: ignore[arg-type]
        assert [j.to_dict() for j in history] == [j.to_dict() for j in release.jobs[owner]]
        assert history[0].collection == "team" and history[0].fine_tuned_model
    carol_jobs = FineTuneJobs(LLM, db, ids["carol"]).history()  # type: ignore[arg-type]
    assert [j.id for j in carol_jobs] == ["ftjob-4"]

    # The old files are kept, renamed; a marker says where they went.
    for name in ["accounts.json", "api_keys.json", "sharing.json", "conversations",
                 "finetune/jobs.json"]:  # fmt: skip
        assert not (data / name).exists() and (data / f"{name}.migrated").exists(), name
    left = [p.parent.name for p in (data / "finetune" / "users").glob("*/jobs.json")]
    assert left == [hashlib.sha256(b"dave").hexdigest()[:16]]  # no account's: not read
    assert json.loads((data / MARKER).read_text())["renamed"]

    # A second open (another process) imports nothing twice.
    before = _counts(db)
    again = Database(database_url(settings))
    upgrade(again, data)
    assert _counts(again) == before
    assert before["users"] == 4 and before["api_keys"] == 4 and before["turns"] == 5
    again.close()


def _counts(db: Database) -> dict[str, Any]:
    tables = ["users", "sessions", "api_keys", "collections", "shares", "conversations",
              "turns", "finetune_jobs"]  # fmt: skip

    def read(c: Connection) -> dict[str, Any]:
        counts: dict[str, Any] = {
            t: c.execute(select(func.count()).select_from(schema.metadata.tables[t])).scalar()
            for t in tables
        }
        meta = select(schema.meta.c.value).where(schema.meta.c.key == KEY)
        counts["meta"] = c.execute(meta).scalar()
        return counts

    return db.read(read)


# -- a failed commit, another store, an unreadable file (SQLite) --------------------------------


def _migrate_then_fail(db: Database, data: Path) -> None:
    """The migration's transaction, rolled back after the files were renamed (as when
    the commit fails)."""
    from alembic import command

    from rag.records.legacy import import_legacy

    def migrate(conn: Connection) -> None:
        command.upgrade(alembic_config(conn), "head")
        import_legacy(conn, data)
        raise RuntimeError("the commit failed")

    with pytest.raises(RuntimeError):
        db.write(migrate)


def test_a_failed_commit_is_imported_again_from_the_renamed_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_release_data_dir(data)
    url = database_url(Settings(data_dir=data))
    _migrate_then_fail(Database(url), data)
    assert (data / "accounts.json.migrated").exists() and not (data / "accounts.json").exists()
    db = Database(url)
    upgrade(db, data)  # the next start: the marker names this store, so it reads them
    counts = _counts(db)
    assert counts["users"] == 4 and counts["api_keys"] == 4 and counts["turns"] == 5
    assert counts["finetune_jobs"] == 3


def test_another_store_never_reads_the_renamed_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_release_data_dir(data)
    upgrade(Database(database_url(Settings(data_dir=data))), data)
    other = Database(f"sqlite:///{tmp_path / 'other.db'}")  # a new, empty store
    upgrade(other, data)
    counts = _counts(other)
    assert counts["users"] == 0 and counts["api_keys"] == 0 and counts["turns"] == 0
    assert json.loads(counts["meta"])["at"]  # done: it will not look again


def test_a_fresh_data_dir_only_records_that_the_import_ran(tmp_path: Path) -> None:
    db = open_database(Settings(data_dir=tmp_path))
    assert set(json.loads(_counts(db)["meta"])) == {"at"}
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("docchat.db")) == []


def test_an_unreadable_accounts_file_stops_the_start_and_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "secret-place"
    data.mkdir()
    (data / "accounts.json").write_text('{"accounts": [{"admin": true}]}')  # no name
    (data / "sharing.json").write_text('{"x": {"owner": "local"}}')
    db = Database(database_url(Settings(data_dir=data)))
    with pytest.raises(LegacyImportError, match="accounts file") as e:
        upgrade(db, data)
    assert "secret-place" not in str(e.value)
    assert (data / "accounts.json").exists() and (data / "sharing.json").exists()
    assert not (data / MARKER).exists()
