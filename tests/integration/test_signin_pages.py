"""Sign-in through the pages (AppTest, no browser): the first administrator, two
users each with a private collection, sharing as reader, the Users page, and every
page refusing a session that is not signed in.

AppTest runs app.py on its first run only, then the current page's file by itself
(see `pages._ui._require_app_frame`), so the pages are checked on their own, as a
URL opened directly would run them; the sidebar is checked on first runs.

The browser test (`tests/test_browser_accounts.py`) covers what needs a real
browser: the cookie that keeps a session across a reload, and URLs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import pages._ui as ui
from rag import DocChat, Settings
from rag.team.access import READER, Sharing
from rag.team.signin import open_accounts
from tests.fixtures.app import sign_in
from tests.fixtures.fakes import HashEmbedder
from tests.fixtures.paths import ROOT

CATS = b"# Cats\n\nCats sleep sixteen hours a day. They purr when content.\n"
DOGS = b"Dogs bark at strangers. Dogs love long walks in the park every morning.\n"


@pytest.fixture
def data(accounts_env: Path) -> Path:
    return accounts_env  # a fresh data dir, accounts on (tests/fixtures/app.py)


def start() -> AppTest:
    at = AppTest.from_file(ROOT / "app.py", default_timeout=60).run()
    assert not at.exception, at.exception
    return at


def captions(at: AppTest) -> str:
    return " ".join(str(c.value) for c in at.sidebar.caption)


def signed_in_as(at: AppTest) -> str:
    """Who the session is, as the pages see it (`_ui.signed_in_user`), in a new run of
    app.py with this session's state."""
    cookie = at.session_state[ui.SESSION]
    again = AppTest.from_file(ROOT / "app.py", default_timeout=60)
    again.session_state[ui.SESSION] = cookie
    again.run()
    assert not again.exception, again.exception
    return captions(again)


PAGES = ["chat", "upload", "library", "finetune", "compare", "evaluate", "users"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_shows_nothing_to_a_session_not_signed_in(data: Path, page: str) -> None:
    open_accounts(Settings(data_dir=data)).add("ann", "ann-password", admin=True)
    at = AppTest.from_file(ROOT / "pages" / f"{page}.py", default_timeout=60).run()
    assert not at.exception, at.exception
    assert not at.main.children or all(not b.children for b in at.main.children.values())


def test_first_start_asks_for_the_first_administrator(data: Path) -> None:
    at = start()
    assert at.title[0].value == "Sign in to DocChat"
    assert "No administrator yet" in at.info[0].value
    assert not at.sidebar.selectbox  # no page but this one
    at.text_input[0].set_value("Ann")
    at.text_input[1].set_value("ann-password")
    at.text_input[2].set_value("ann-password")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert "Signed in as **ann** (administrator)" in signed_in_as(at)
    (account,) = open_accounts(Settings(data_dir=data)).list()
    assert account.admin and account.name == "ann"
    # A second browser session is not signed in: it gets the sign-in form, no first-admin.
    other = start()
    assert not other.info and other.button[0].label == "Sign in"


def test_admin_from_the_environment_once(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCCHAT_ADMIN_USER", "root")
    monkeypatch.setenv("DOCCHAT_ADMIN_PASSWORD", "root-password")
    at = sign_in(start(), "root", "root-password")
    assert "Signed in as **root** (administrator)" in signed_in_as(at)


def test_wrong_password_is_refused_with_a_clear_message(data: Path) -> None:
    open_accounts(Settings(data_dir=data)).add("ann", "ann-password", admin=True)
    at = sign_in(start(), "ann", "not-it-at-all")
    assert "Wrong user name or password" in at.error[0].value
    assert not at.sidebar.selectbox
    for _ in range(3):
        at = sign_in(at, "ann", "not-it-at-all")
    assert "Too many failed sign-ins" in at.error[0].value.replace("\\", "")


def test_two_users_private_collections_sharing_and_sign_out(data: Path) -> None:
    accounts = open_accounts(Settings(data_dir=data))
    accounts.add("ann", "ann-password", admin=False)
    bob = accounts.add("bob", "bob-password").user
    accounts.add("root", "root-password", admin=True)
    settings = Settings.from_env()
    base = DocChat.open(settings, embedder=HashEmbedder())
    ann = base.as_user(open_accounts(settings).list()[0].user)
    assert ann.user.name == "ann"
    ann.ingest("cats.md", CATS, collection="ann-notes")

    # Bob signs in: Ann's collection is nowhere (sidebar, Library, Chat, Upload).
    at = sign_in(start(), "bob", "bob-password")
    sidebar = AppTest.from_file(ROOT / "app.py", default_timeout=60)
    sidebar.session_state[ui.SESSION] = at.session_state[ui.SESSION]
    sidebar.run()
    assert "Signed in as **bob**" in captions(sidebar)
    assert "ann-notes" not in sidebar.sidebar.selectbox[0].options
    assert sidebar.sidebar.selectbox[0].value == "bob"  # his own first collection, empty
    at.switch_page("pages/library.py").run()
    assert not at.exception, at.exception
    assert not at.dataframe and "upload documents first" in at.info[-1].value
    # A session forced onto her collection (widget state) gets nothing from it.
    for page in ("chat", "library", "upload"):
        at.session_state[ui.ACTIVE] = "ann-notes"
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, at.exception
        shown = " ".join(str(e.value) for e in [*at.markdown, *at.info, *at.warning, *at.text])
        assert "Cats sleep" not in shown and "cats.md" not in shown
    assert "taken" in at.warning[0].value  # upload: the name is not free, nothing more

    # Ann shares it with Bob as reader: he can chat, not delete.
    ann.share("ann-notes", Sharing(ann.user.id, readers=frozenset({bob.id})))
    at.session_state[ui.ACTIVE] = "ann-notes"
    at.switch_page("pages/chat.py").run()
    at.chat_input[0].set_value("How long do cats sleep?").run()
    assert not at.exception, at.exception
    assert any("sixteen hours" in str(m.value) for m in at.markdown)
    at.switch_page("pages/library.py").run()
    assert not at.exception, at.exception
    labels = [b.label for b in at.button]
    assert not any(label.startswith("Delete") for label in labels), labels
    assert "Re-index" not in labels and "Rename" not in labels
    assert "Your role: reader" in " ".join(str(c.value) for c in at.caption)
    assert base.as_user(accounts.list()[1].user).role("ann-notes") == READER
    at.switch_page("pages/upload.py").run()
    assert "not add to it" in at.info[0].value
    # (Signing out is the sidebar's, which AppTest runs only on a first run: the
    # browser test signs out.)


def test_users_page_for_administrators(data: Path) -> None:
    open_accounts(Settings(data_dir=data)).add("root", "root-password", admin=True)
    at = sign_in(start(), "root", "root-password")
    at.switch_page("pages/users.py").run()
    assert not at.exception, at.exception
    at.text_input[0].set_value("carol")
    at.text_input[1].set_value("carol-password")
    next(b for b in at.button if b.label == "Add").click().run()
    assert not at.exception, at.exception
    assert "Added carol" in at.success[0].value
    names = [a.name for a in open_accounts(Settings(data_dir=data)).list()]
    assert names == ["carol", "root"]
    at.selectbox[0].select("root").run()
    next(b for b in at.button if b.label == "Make user").click().run()
    assert "no administrator" in at.error[0].value  # the last one stays
