"""The access rules as a table (user x role x action), built-in accounts, the bind check."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.core.errors import AccessDeniedError, AccountError, SignInError
from rag.core.settings import Settings
from rag.records import Database, open_database
from rag.team.access import User
from rag.team.accounts import LOCK_AFTER, Accounts


def stored(db: Database) -> str:
    """Everything the record store's file holds, as text (the SQLite database and its
    write-ahead log)."""
    files = sorted(Path(db.url.removeprefix("sqlite:///")).parent.glob("docchat.db*"))
    return b"".join(f.read_bytes() for f in files).decode("latin-1")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_accounts_hash_passwords_and_sessions_end_with_a_new_password(tmp_path: Path) -> None:
    clock = Clock()
    db = open_database(Settings(data_dir=tmp_path))
    accounts = Accounts(db, session_hours=1, clock=clock)
    ann = accounts.add("Ann@Example.com", "correct horse", admin=True).user
    assert "correct horse" not in stored(db) and "$argon2id$" in stored(db)
    assert [a.name for a in accounts.list()] == ["ann@example.com"]
    assert "correct horse" not in repr(accounts.list())
    token = accounts.sign_in("ann@example.com", "correct horse")
    assert token not in stored(db)
    assert accounts.user_of(token) == User(ann.id, "ann@example.com", admin=True)
    clock.now += 3601  # sessions expire
    assert accounts.user_of(token) is None
    token = accounts.sign_in("ann@example.com", "correct horse")
    accounts.set_password("ann@example.com", "battery staple")
    assert accounts.user_of(token) is None  # a new password ends every session
    with pytest.raises(SignInError):
        accounts.sign_in("ann@example.com", "correct horse")
    clock.now += 60
    token = accounts.sign_in("ann@example.com", "battery staple")
    accounts.sign_out(token)
    assert accounts.user_of(token) is None
    token = accounts.sign_in("ann@example.com", "battery staple")
    accounts.remove("Ann@Example.com")  # the name as the user typed it
    assert accounts.user_of(token) is None  # removing a user ends their sessions
    with pytest.raises(AccountError, match="at least 8"):
        accounts.add("bob", "short")
    with pytest.raises(AccountError, match="user name"):
        accounts.add("bob smith", "long enough")


def test_failed_sign_ins_are_slowed_then_locked(tmp_path: Path) -> None:
    clock = Clock()
    accounts = Accounts(open_database(Settings(data_dir=tmp_path)), clock=clock)
    accounts.add("ann", "correct horse")
    messages = []
    for _ in range(LOCK_AFTER):
        with pytest.raises(SignInError) as e:
            accounts.sign_in("ann", "wrong password", client="10.0.0.9")
        messages.append(str(e.value))
        clock.now += 0.5  # faster than the delays allow
    assert messages[0] == "Wrong user name or password."
    assert any("wait" in m for m in messages)
    # Waiting out each delay, the failures go on until the lock.
    for _ in range(LOCK_AFTER):
        clock.now += 31
        with pytest.raises(SignInError):
            accounts.sign_in("ann", "wrong password", client="10.0.0.9")
    clock.now += 31
    with pytest.raises(SignInError, match="locked"):
        accounts.sign_in("ann", "correct horse", client="10.0.0.9")  # even the right one
    clock.now += 15 * 60 + 1
    assert accounts.sign_in("ann", "correct horse", client="10.0.0.9")


def test_make_run_refuses_a_public_address_without_sign_in(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.fixtures.paths import ROOT

    env = {k: v for k, v in os.environ.items() if k != "DOCCHAT_AUTH"}
    env |= {"DOCCHAT_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    run = [sys.executable, "-m", "rag", "check-bind"]
    refused = subprocess.run([*run, "0.0.0.0"], env=env, capture_output=True, text=True)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "DOCCHAT_AUTH" in refused.stderr
    assert subprocess.run([*run, "127.0.0.1"], env=env).returncode == 0
    proxied = subprocess.run([*run, "0.0.0.0"], env={**env, "DOCCHAT_AUTH": "none"})
    assert proxied.returncode == 0


def test_users_command_manages_accounts(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    from tests.fixtures.paths import ROOT

    env = {**os.environ, "DOCCHAT_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}

    def users(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "rag", "users", *args], env=env,
                              input=stdin, capture_output=True, text=True)  # fmt: skip

    added = users("add", "ann", "--admin", "--password-stdin", stdin="long password\n")
    assert added.returncode == 0, added.stderr
    assert users("add", "bob", "--password-stdin", stdin="short\n").returncode == 1
    listed = json.loads(users("list", "--json").stdout)
    assert [(u["name"], u["admin"]) for u in listed] == [("ann", True)]
    assert users("passwd", "ann", "--password-stdin", stdin="another password\n").returncode == 0
    assert "long password" not in stored(open_database(Settings(data_dir=tmp_path)))
    assert users("remove", "ann").returncode == 0
    assert users("list").stdout.strip() == "(no users)"


def test_the_engine_refuses_what_the_rules_forbid(tmp_path: Path) -> None:
    from rag import DocChat, Settings
    from rag.team.access import Sharing
    from tests.fixtures.fakes import HashEmbedder

    settings = Settings(data_dir=tmp_path / "data", min_score=0.0)
    base = DocChat.open(settings, embedder=HashEmbedder())
    ann, bob = base.as_user(User("u-ann", "ann")), base.as_user(User("u-bob", "bob"))
    ann.create_collection("ann-notes")
    added = ann.ingest("cats.md", b"# Cats\n\nCats eat fish.", collection="ann-notes")
    assert added.status == "indexed"
    doc = ann.documents("ann-notes")[0].doc_id
    chunk = ann.chunks(doc, collection="ann-notes")[0]

    # Bob was given nothing: he sees no collection and every call is refused.
    assert "ann-notes" not in bob.collection_names() and not bob.collections()
    calls = {
        "collection": lambda: bob.collection("ann-notes"),
        "documents": lambda: bob.documents("ann-notes"),
        "chunks": lambda: bob.chunks(doc, collection="ann-notes"),
        "original": lambda: bob.original(doc, collection="ann-notes"),
        "search": lambda: bob.search("cats", collection="ann-notes"),
        "retrieve": lambda: bob.retrieve("What do cats eat?", collection="ann-notes"),
        "chat": lambda: bob.chats.start("ann-notes"),
        "summary": lambda: bob.summarize(doc, collection="ann-notes"),
        "chunk": lambda: bob.chunk(chunk.id, collection="ann-notes"),
        "all_chunks": lambda: bob.all_chunks("ann-notes"),
        "text_view": lambda: bob.text_view(chunk, collection="ann-notes"),
        "ingest": lambda: bob.ingest("x.md", b"x", collection="ann-notes"),
        "delete_document": lambda: bob.delete_document(doc, collection="ann-notes"),
        "reindex": lambda: bob.reindex(collection="ann-notes", chunk_tokens=100, chunk_overlap=10),
        "rename": lambda: bob.rename_collection("ann-notes", "mine"),
        "delete_collection": lambda: bob.delete_collection("ann-notes"),
        "share": lambda: bob.share("ann-notes", Sharing("u-bob")),
    }
    for what, call in calls.items():
        with pytest.raises(AccessDeniedError):
            call()
            pytest.fail(f"{what} was allowed")

    # Shared with Bob as a reader: he can search and chat, not change anything.
    ann.share("ann-notes", Sharing("u-ann", readers=frozenset({"u-bob"})))
    assert bob.collection_names() == ["ann-notes"]
    _, hits = bob.search("cats", collection="ann-notes")
    assert hits and hits[0].chunk.doc_id == doc
    assert bob.ask("What do cats eat?", collection="ann-notes").sources
    for what in ("ingest", "delete_document", "reindex", "rename", "delete_collection", "share"):
        with pytest.raises(AccessDeniedError):
            calls[what]()
    assert ann.documents("ann-notes")  # nothing was lost
    # An administrator may do everything; single-user mode is the administrator.
    root = base.as_user(User("u-root", "root", admin=True))
    assert base.documents("ann-notes") and root.documents("ann-notes")
