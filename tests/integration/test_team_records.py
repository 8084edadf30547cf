"""Accounts, sessions, sign-in throttling, API keys and sharing in the record store, on
SQLite and on a real PostgreSQL: everything by user id, removal in one transaction,
and the throttling limits holding across processes (two `Database`s on one store are
two processes' views of it)."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest

from rag.components.versions import CollectionVersions
from rag.core.errors import AccountError, SignInError
from rag.core.settings import Settings
from rag.records import Database, open_database
from rag.records.database import database_url
from rag.team.access import EDITOR, LOCAL, READER, Sharing
from rag.team.accounts import FREE_FAILURES, LOCK_AFTER, Accounts
from rag.team.keys import ApiKeys
from rag.team.sharing import SharingStore
from rag.team.signin import UserAdmin


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    url = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    return open_database(Settings(data_dir=tmp_path, database_url=url))


def another_process(db: Database) -> Database:
    """A second connection pool on the same store, as another process has."""
    return Database(db.url)


def test_sessions_end_with_sign_out_password_disable_and_expiry(db: Database) -> None:
    clock = Clock()
    accounts = Accounts(db, session_hours=1, clock=clock)
    ann = accounts.add("ann", "ann-password").user
    token = accounts.sign_in("ann", "ann-password")
    assert accounts.user_of(token) == ann and accounts.current_user(ann.id) == ann
    elsewhere = Accounts(another_process(db), clock=clock)
    elsewhere.update("ann", disabled=True)  # an administrator in another process
    assert accounts.user_of(token) is None and accounts.current_user(ann.id) is None
    with pytest.raises(SignInError):
        accounts.sign_in("ann", "ann-password")
    elsewhere.update("ann", disabled=False)
    assert accounts.user_of(token) is None  # disabling ended the session for good
    clock.now += 60
    token = accounts.sign_in("ann", "ann-password")
    elsewhere.set_password("ann", "new-password")
    assert accounts.user_of(token) is None
    token = accounts.sign_in("ann", "new-password")
    accounts.sign_out(token)
    assert accounts.user_of(token) is None
    token = accounts.sign_in("ann", "new-password")
    clock.now += 3601
    assert accounts.user_of(token) is None  # expired
    assert accounts.current_user("local") == LOCAL
    assert accounts.current_user("u" + "0" * 24) is None


def test_throttling_counts_across_processes(db: Database) -> None:
    clock = Clock()
    here = Accounts(db, clock=clock)
    there = Accounts(another_process(db), clock=clock)
    here.add("ann", "ann-password")
    for i in range(LOCK_AFTER):
        with pytest.raises(SignInError, match="Wrong user name"):
            (here if i % 2 else there).sign_in("ann", "wrong password", client="10.0.0.9")
        clock.now += 31  # past every delay: only the lock can stop the next one
    for accounts in (here, there):
        with pytest.raises(SignInError, match="locked"):
            accounts.sign_in("ann", "ann-password", client="10.0.0.1")  # the name is locked
        with pytest.raises(SignInError, match="locked"):
            accounts.sign_in("bob", "bob-password", client="10.0.0.9")  # and the client
    clock.now += 15 * 60 + 1
    assert there.sign_in("ann", "ann-password")
    assert here.sign_in("ann", "ann-password")  # a success cleared the counters


def test_guesses_sent_at_once_pass_a_delay_one_at_a_time(db: Database) -> None:
    clock = Clock()
    accounts = Accounts(db, clock=clock)
    accounts.add("ann", "ann-password")
    for _ in range(FREE_FAILURES):
        with pytest.raises(SignInError):
            accounts.sign_in("ann", "wrong password")
    clock.now += 1.5  # the first delay (1 s) is over: one more attempt may go
    views = [Accounts(another_process(db), clock=clock) for _ in range(6)]
    messages: list[str] = []
    start = threading.Barrier(len(views))

    def guess(view: Accounts) -> None:
        start.wait()
        try:
            view.sign_in("ann", "wrong password")
        except SignInError as e:
            messages.append(str(e))

    threads = [threading.Thread(target=guess, args=(v,)) for v in views]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(messages)[0] == "Too many failed sign-ins: wait 2 s before trying again."
    assert messages.count("Wrong user name or password.") == 1, messages


def test_keys_by_user_id(db: Database) -> None:
    keys = ApiKeys(db)
    record, key = keys.create("u-ann", " laptop ")
    assert key.startswith("dck_") and record.id == key[:12] and record.name == "laptop"
    assert keys.user_of(key) == "u-ann"
    assert keys.user_of("dck_unknown") is None and keys.user_of(key[4:]) is None
    _, bob_key = keys.create("u-bob")
    assert [k.user_id for k in keys.list()] == ["u-ann", "u-bob"]
    assert keys.list("u-bob")[0].id == bob_key[:12]
    with pytest.raises(AccountError, match="No API key"):
        keys.revoke(record.id, "u-bob")  # not his
    keys.revoke(record.id, "u-ann")
    assert keys.user_of(key) is None
    keys.create("u-bob")
    assert keys.revoke_all("u-bob") == 2 and keys.list() == []
    assert "dck_" not in repr(keys.list())


def test_sharing_by_id_and_versions_left_alone(db: Database) -> None:
    store, versions = SharingStore(db), CollectionVersions(db)
    assert store.of("notes") == Sharing("")  # no record: the administrators'
    versions.bump("notes")
    versions.bump("notes")
    both = frozenset({"u-ed"})
    store.set("notes", Sharing("u-ann", readers=both | {"u-rita"}, editors=both,
                               everyone=READER))  # fmt: skip
    # One role per user: the higher.
    assert store.of("notes") == Sharing("u-ann", frozenset({"u-rita"}), both, READER)
    assert versions.of("notes") == 2  # the version is the versions' alone
    store.rename("notes", "team")
    assert store.of("team") == Sharing("u-ann", frozenset({"u-rita"}), both, READER)
    assert store.of("notes") == Sharing("")
    assert (versions.of("notes"), versions.of("team")) == (2, 0)
    store.drop("team")
    assert store.of("team") == Sharing("")  # a later "team" is made anew
    with pytest.raises(AccountError):
        store.set("x", Sharing("u-ann", everyone=EDITOR + "s"))


def test_removal_revokes_and_hands_over_in_one_step(db: Database) -> None:
    accounts, keys, store = Accounts(db), ApiKeys(db), SharingStore(db)
    root = accounts.add("root", "root-password", admin=True).user
    carol = accounts.add("carol", "carol-password").user
    token = accounts.sign_in("carol", "carol-password")
    _, key = keys.create(carol.id)
    store.set("carol-notes", Sharing(carol.id))
    store.set("carol-more", Sharing(carol.id, everyone=READER))
    store.set("root-notes", Sharing(root.id, readers=frozenset({carol.id})))
    names = UserAdmin(accounts, root).remove("carol")
    assert names == ("carol-more", "carol-notes")
    assert store.of("carol-notes").owner == root.id
    assert store.of("carol-more") == Sharing(root.id, everyone=READER)
    assert store.of("root-notes").readers == frozenset()
    assert accounts.user_of(token) is None and keys.user_of(key) is None
    assert accounts.current_user(carol.id) is None
    # The same name again: a new id, nothing of the old one's.
    again = accounts.add("carol", "other-password").user
    assert again.id != carol.id
    assert store.of("carol-notes").owner == root.id and keys.list(again.id) == []
    # From the command line (single-user mode's user): to the administrators.
    store.set("new-notes", Sharing(again.id))
    assert UserAdmin(accounts, LOCAL).remove("carol") == ("new-notes",)
    assert store.of("new-notes") == Sharing("")


def test_first_administrator_once_even_when_two_ask_at_once(db: Database) -> None:
    views = [Accounts(another_process(db)) for _ in range(4)]
    made: list[str] = []
    start = threading.Barrier(len(views))

    def first(i: int) -> None:
        start.wait()
        with contextlib.suppress(AccountError):  # all but one: "exists already"
            made.append(views[i].add(f"admin{i}", "admin-password", admin=True,
                                     first_admin=True).name)  # fmt: skip

    threads = [threading.Thread(target=first, args=(i,)) for i in range(len(views))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and [a.name for a in Accounts(db).list()] == made


def test_the_sqlite_store_is_where_the_settings_say(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert database_url(settings).endswith(str(tmp_path / "docchat.db"))
    Accounts(open_database(settings)).add("ann", "ann-password")
    assert not (tmp_path / "accounts.json").exists()  # no file of an earlier release
