"""Identities that cannot be inherited, end to end: a removed user's key, sessions and
collections pass to no one who later takes the name (through the HTTP API with the
real `openai` client, through the pages under AppTest, and through `rag users
remove`), and no account name confers anything: an account named `local` gets
nothing of the collections made before sign-in was on, which are the
administrators'.

The records underneath (accounts, keys, sharing, throttling) on SQLite and
PostgreSQL are in tests/integration/test_team_records.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest
from streamlit.testing.v1 import AppTest

import pages._ui as ui
from rag import DocChat, Settings
from rag.records import open_database
from rag.team.access import OWNER, Sharing
from rag.team.sharing import SharingStore
from rag.team.signin import open_accounts
from tests.fixtures.app import sign_in
from tests.fixtures.fakes import HashEmbedder
from tests.fixtures.paths import ROOT
from tests.integration.test_api import Served, serve

CATS = b"# Cats\n\nCats sleep sixteen hours a day. They purr when content.\n"
served_api = contextlib.contextmanager(serve)


def model_ids(served: Served, key: str) -> list[str]:
    return [m.id for m in served.client(key).models.list()]


def test_a_new_account_with_a_removed_user_s_name_gets_nothing_through_the_api(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, min_score=0.0, auth="accounts")
    engine = DocChat.open(settings, embedder=HashEmbedder())
    accounts = engine.signin.accounts
    root = accounts.add("root", "root-password", admin=True).user
    carol = accounts.add("carol", "carol-password").user
    as_carol = engine.as_user(carol)
    as_carol.ingest("cats.md", CATS, collection="carol-notes")  # private: hers alone
    old_key = as_carol.create_api_key("laptop")[1]
    root_key = engine.as_user(root).create_api_key()[1]
    with served_api(engine) as served:
        assert model_ids(served, old_key) == ["docchat/carol-notes"]
        assert engine.as_user(root).users.remove("carol") == ("carol-notes",)
        new = accounts.add("carol", "someone-else-s").user
        assert new.id != carol.id
        with pytest.raises(openai.AuthenticationError):
            model_ids(served, old_key)  # revoked with the account
        new_key = engine.as_user(new).create_api_key()[1]
        assert model_ids(served, new_key) == []
        h = httpx.Client(base_url=served.url, headers={"authorization": f"Bearer {new_key}"})
        assert h.get("/v1/collections/carol-notes/documents").status_code == 403
        question = [{"role": "user", "content": "How long do cats sleep?"}]
        with pytest.raises(openai.PermissionDeniedError):
            served.client(new_key).chat.completions.create(model="docchat/carol-notes",
                                                           messages=question)  # fmt: skip
        # The administrator who removed her owns it now.
        assert "docchat/carol-notes" in model_ids(served, root_key)
        assert engine.as_user(root).sharing_of("carol-notes").owner == root.id
        assert engine.as_user(root).role("carol-notes") == OWNER
        # Removed with her collections: they are gone.
        engine.as_user(new).create_collection("carol-2")
        assert engine.as_user(root).users.remove("carol", delete_collections=True) == ("carol-2",)
        assert "carol-2" not in engine.collection_names()


def test_an_account_named_local_gets_nothing_of_the_administrators_collections(
    tmp_path: Path,
) -> None:
    # Before sign-in was on: single-user mode's collection and key.
    single = DocChat.open(Settings(data_dir=tmp_path, min_score=0.0), embedder=HashEmbedder())
    single.ingest("cats.md", CATS, collection="legacy")
    single_key = single.create_api_key()[1]
    settings = Settings(data_dir=tmp_path, min_score=0.0, auth="accounts")
    engine = DocChat.open(settings, embedder=HashEmbedder(), store=single.services.store)
    accounts = engine.signin.accounts
    local = accounts.add("local", "local-password").user  # a plain account
    root = accounts.add("root", "root-password", admin=True).user
    local_key = engine.as_user(local).create_api_key()[1]
    root_key = engine.as_user(root).create_api_key()[1]
    with served_api(engine) as served:
        assert model_ids(served, local_key) == []
        h = httpx.Client(base_url=served.url, headers={"authorization": f"Bearer {local_key}"})
        refused = h.get("/v1/collections/legacy/documents")
        assert refused.status_code in (403, 404) and "cats" not in refused.text
        with pytest.raises(openai.AuthenticationError):
            model_ids(served, single_key)  # single-user mode's key acts for no one now
        assert model_ids(served, root_key) == ["docchat/legacy"]
        as_root = httpx.get(f"{served.url}/v1/collections/legacy/documents",
                            headers={"authorization": f"Bearer {root_key}"})  # fmt: skip
        assert as_root.status_code == 200 and as_root.json()["data"][0]["name"] == "cats.md"
    assert engine.as_user(local).role("legacy") == "" and not engine.as_user(local).may("read")
    assert engine.as_user(root).role("legacy") == OWNER
    assert engine.as_user(root).sharing_of("legacy").owner == ""  # the administrators'


# -- the pages ---------------------------------------------------------------------------------


@pytest.fixture
def data(accounts_env: Path) -> Path:
    return accounts_env  # a fresh data dir, accounts on (tests/fixtures/app.py)


def signed_in(name: str, password: str) -> AppTest:
    return sign_in(AppTest.from_file(ROOT / "app.py", default_timeout=60).run(), name, password)


def sidebar_of(at: AppTest) -> tuple[list[str], str]:
    """The sidebar's collections and the active one, in a first run of app.py with
    this session's cookie (AppTest runs the sidebar on first runs only)."""
    again = AppTest.from_file(ROOT / "app.py", default_timeout=60)
    again.session_state[ui.SESSION] = at.session_state[ui.SESSION]
    again.run()
    assert not again.exception, again.exception
    pick = again.sidebar.selectbox[0]
    return list(pick.options), str(pick.value)


def plain(text: str) -> str:
    """Text without the Markdown escapes DocChat adds."""
    return re.sub(r"\\(.)", r"\1", text)


def shown(at: AppTest) -> str:
    elements = [*at.markdown, *at.info, *at.warning, *at.text, *at.caption, *at.dataframe]
    return plain(" ".join(str(e.value) for e in elements))


def test_the_pages_give_a_new_account_nothing_of_the_name_s_last_owner(data: Path) -> None:
    # Before sign-in was on: a collection of single-user mode's (the administrators').
    DocChat.open(Settings(data_dir=data, min_score=0.0), embedder=HashEmbedder()).ingest(
        "cats.md", CATS, collection="legacy"
    )
    accounts = open_accounts(Settings(data_dir=data))
    accounts.add("root", "root-password", admin=True)
    carol = accounts.add("carol", "carol-password").user
    accounts.add("local", "local-password")
    base = DocChat.open(Settings.from_env(), embedder=HashEmbedder())
    for collection in ("carol-notes", "carol"):  # "carol": her first, named after her
        base.as_user(carol).ingest("cats.md", CATS, collection=collection)

    # The administrator removes her on the Users page, handing her collections over.
    root = signed_in("root", "root-password")
    root.switch_page("pages/users.py").run()
    root.selectbox[0].select("carol").run()
    assert root.radio[0].value == "hand them over to me"
    next(c for c in root.checkbox if c.label == "Yes, remove carol").check()
    next(b for b in root.button if b.label == "Remove").click().run()
    assert not root.exception, root.exception
    assert plain(root.success[0].value) == (
        "Removed carol; 2 collection(s) of theirs now yours: carol, carol-notes."
    )

    # A new carol: none of it is hers, not even the collection named after her.
    accounts.add("carol", "another-password")
    at = signed_in("carol", "another-password")
    names, active = sidebar_of(at)
    assert "carol-notes" not in names and "carol" not in names and "legacy" not in names
    assert active == "carol-2"  # her own first collection: "carol" is someone else's
    for forced in ("carol-notes", "carol", "legacy"):
        for page in ("library", "chat"):
            at.session_state[ui.ACTIVE] = forced
            at.switch_page(f"pages/{page}.py").run()
            assert not at.exception, at.exception
            assert "Cats sleep" not in shown(at) and "cats.md" not in shown(at)

    # An account named "local" gets nothing of the administrators' collection.
    local = signed_in("local", "local-password")
    assert "legacy" not in sidebar_of(local)[0]
    local.session_state[ui.ACTIVE] = "legacy"
    local.switch_page("pages/library.py").run()
    assert "cats.md" not in shown(local) and "Your role: owner" not in shown(local)

    # The administrator owns what was carol's, and the legacy collection.
    for collection in ("carol-notes", "legacy"):
        root.session_state[ui.ACTIVE] = collection
        root.switch_page("pages/library.py").run()
        assert not root.exception, root.exception
        assert "Your role: owner" in shown(root) and "cats.md" in shown(root)
    root.session_state[ui.ACTIVE] = "carol-notes"
    root.switch_page("pages/library.py").run()
    assert "Owner: root" in shown(root)


# The command line opens the embedded Chroma store, which one process at a time may
# hold: the collections are made in a child process, and this one never opens them.
SETUP = """
from rag import DocChat, Settings
from tests.fixtures.fakes import HashEmbedder

engine = DocChat.open(Settings.from_env(), embedder=HashEmbedder())
for name in ("carol", "dave"):
    user = engine.signin.accounts.get(name).user
    engine.as_user(user).ingest("cats.md", b"Cats sleep.", collection=f"{name}-notes")
"""


@pytest.mark.slow
def test_rag_users_remove_hands_over_to_the_administrators_or_deletes(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", auth="accounts")
    accounts = open_accounts(settings)
    for name in ("carol", "dave"):
        accounts.add(name, f"{name}-password")
    env = {**os.environ, "DOCCHAT_DATA_DIR": str(settings.data_dir), "DOCCHAT_AUTH": "accounts",
           "PYTHONPATH": str(ROOT)}  # fmt: skip

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done

    run("-c", SETUP)
    helped = run("-m", "rag", "users", "remove", "--help").stdout
    assert "administrators" in helped and "--delete-collections" in helped
    kept = run("-m", "rag", "users", "remove", "carol").stdout
    assert "1 collection(s) of theirs now the administrators': carol-notes" in kept
    deleted = run("-m", "rag", "users", "remove", "dave", "--delete-collections").stdout
    assert "deleted: dave-notes" in deleted
    listed = json.loads(run("-m", "rag", "collections", "--json").stdout)
    assert [c["name"] for c in listed] == ["carol-notes"]
    sharing = SharingStore(open_database(settings))
    assert sharing.of("carol-notes") == Sharing("")  # the administrators'
    assert accounts.list() == []
