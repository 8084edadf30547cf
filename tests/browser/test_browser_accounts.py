"""Built-in accounts in a real browser (Debian's Chromium, Playwright, `streamlit run`).

Two users each upload a private document; Bob cannot see, search, chat with,
download or delete Ann's collection through any page, widget or URL; after Ann
shares it with him as reader (the Library's Sharing panel) he can chat with it and
cannot delete from it. A reload keeps a session (the signed cookie); signing out
ends it, and a reload does not bring it back. Wrong passwords are slowed down
after three, then locked by the tenth. Each user has a browser context of their
own (their own cookies).

In CI (CI=true) a missing Chromium or Playwright fails the test; elsewhere it skips.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag import Settings
from rag.team.signin import COOKIE, open_accounts
from tests.fixtures.browser import (
    ARTIFACTS,
    CHROMIUM,
    DROP_JS,
    LAUNCH_ARGS,
    need_browser,
    serve,
    settle,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ANN_DOC = b"# Ann's notes\n\nThe secret launch code of project Heron is tangerine.\n"
BOB_DOC = b"# Bob's notes\n\nBob's bicycle is painted a deep shade of green.\n"


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data = tmp_path / "data"
    accounts = open_accounts(Settings(data_dir=data))
    accounts.add("root", "root-password", admin=True)
    accounts.add("ann", "ann-password")
    accounts.add("bob", "bob-password")
    yield from serve(tmp_path, None, {"DOCCHAT_AUTH": "accounts", "DOCCHAT_MIN_SCORE": "0"})


def sign_in(page: Any, url: str, name: str, password: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.get_by_text("Sign in to DocChat")).to_be_visible()
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()


def upload(page: Any, name: str, data: bytes, collection: str) -> None:
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Upload").click()
    expect(page.locator('[data-testid="stFileUploaderDropzone"]')).to_be_visible(timeout=30_000)
    page.evaluate(DROP_JS, [name, base64.b64encode(data).decode()])
    expect(page.get_by_text(f"1 indexed in {collection}")).to_be_visible(timeout=120_000)


def go(page: Any, link: str) -> None:
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name=link).click()
    settle(page)


def collections_offered(page: Any) -> str:
    """The sidebar's collection selector, opened: every option it offers."""
    box = page.get_by_test_id("stSidebar").get_by_role("combobox", name="Collection")
    box.click()
    options = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return " | ".join(options)


def test_two_users_private_shared_reload_and_sign_out(
    app_url: tuple[str, Path],
) -> None:
    need_browser()
    from playwright.sync_api import expect, sync_playwright

    url, _ = app_url
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        remote: list[str] = []

        def context() -> Any:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(30_000)
            page.on("request", lambda r: remote.append(r.url) if "127.0.0.1" not in r.url else None)
            return page

        try:
            # Not signed in: every page's URL shows the sign-in page and nothing else.
            anon = context()
            for path in ("", "/library", "/upload", "/users", "/chat"):
                anon.goto(url + path)
                expect(anon.get_by_text("Sign in to DocChat")).to_be_visible()
                expect(anon.get_by_test_id("stSidebarNavItems")).to_have_count(0)
            anon.screenshot(path=ARTIFACTS / "accounts-1-sign-in.png")

            # Ann and Bob each upload a private document (their own first collection).
            ann = context()
            sign_in(ann, url, "ann", "ann-password")
            upload(ann, "ann-notes.md", ANN_DOC, "ann")
            bob = context()
            sign_in(bob, url, "bob", "bob-password")
            upload(bob, "bob-notes.md", BOB_DOC, "bob")

            # The session survives a reload (the cookie), in a new tab too.
            cookies = {c["name"]: c for c in bob.context.cookies()}
            assert COOKIE in cookies and cookies[COOKIE]["sameSite"] == "Strict"
            bob.reload()
            expect(bob.get_by_text("Signed in as bob")).to_be_visible()
            tab = bob.context.new_page()
            tab.goto(url + "/library")
            expect(tab.get_by_text("Signed in as bob")).to_be_visible()
            tab.close()

            # Bob sees nothing of Ann's: not in the selector, the Library, search or chat.
            assert "ann" not in collections_offered(bob).split(" | ")
            go(bob, "Library")
            expect(bob.get_by_text("Collection: bob")).to_be_visible()
            expect(bob.get_by_text("ann-notes.md")).to_have_count(0)
            go(bob, "Chat")
            box = bob.get_by_test_id("stChatInputTextArea")
            box.fill("What is the launch code of project Heron?")
            box.press("Enter")
            expect(bob.get_by_text("Sources", exact=True)).to_be_visible(timeout=60_000)
            expect(bob.get_by_text("tangerine")).to_have_count(0)
            # Nor by naming it: an upload into her collection's name is refused.
            go(bob, "Upload")
            bob.get_by_test_id("stSelectbox").filter(has_text="Into collection").click()
            bob.get_by_role("option", name=re.compile("New collection")).click()
            bob.get_by_label("Name of the new collection").fill("ann")
            bob.get_by_label("Name of the new collection").press("Enter")
            expect(bob.get_by_text("The name ann is taken")).to_be_visible()
            expect(bob.locator('[data-testid="stFileUploaderDropzone"]')).to_have_count(0)

            # Ann shares her collection with Bob as reader (Library, Sharing).
            go(ann, "Library")
            ann.get_by_text("Sharing", exact=True).click()
            settle(ann)  # the expander's rerun redraws the form: open the list after it
            readers = ann.get_by_test_id("stMultiSelect").filter(has_text="Readers")
            readers.locator("input").fill("bob")  # typing filters the list and opens it
            ann.get_by_role("option", name="bob").click()
            ann.keyboard.press("Escape")
            ann.get_by_role("button", name="Save sharing").click()
            expect(ann.get_by_text("Sharing of ann saved")).to_be_visible()
            settle(ann)
            ann.screenshot(path=ARTIFACTS / "accounts-2-sharing.png", full_page=True)

            # Bob can now chat with it, and cannot delete from it.
            bob.reload()
            expect(bob.get_by_text("Signed in as bob")).to_be_visible()
            assert "ann" in collections_offered(bob).split(" | ")
            picker = bob.get_by_test_id("stSidebar").get_by_role("combobox", name="Collection")
            picker.click()
            bob.get_by_role("option", name="ann", exact=True).click()
            go(bob, "Chat")
            box = bob.get_by_test_id("stChatInputTextArea")
            box.fill("What is the launch code of project Heron?")
            box.press("Enter")
            expect(bob.get_by_text("tangerine").first).to_be_visible(timeout=60_000)
            go(bob, "Library")
            expect(bob.get_by_text("Your role: reader")).to_be_visible()
            expect(bob.get_by_role("button", name=re.compile("^Delete"))).to_have_count(0)
            expect(bob.get_by_role("button", name="Re-index")).to_have_count(0)
            bob.screenshot(path=ARTIFACTS / "accounts-3-reader.png", full_page=True)

            # Signing out ends the session; a reload does not bring it back.
            bob.get_by_role("button", name="Sign out").click()
            expect(bob.get_by_text("Sign in to DocChat")).to_be_visible()
            bob.reload()
            expect(bob.get_by_text("Sign in to DocChat")).to_be_visible()
            expect(bob.get_by_test_id("stSidebarNavItems")).to_have_count(0)

            assert not remote, f"requests left the machine: {remote[:5]}"
        finally:
            browser.close()


def test_wrong_passwords_are_slowed_then_locked(app_url: tuple[str, Path]) -> None:
    need_browser()
    from playwright.sync_api import expect, sync_playwright

    url, _ = app_url
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            guess = browser.new_page()
            guess.set_default_timeout(30_000)
            guess.goto(url)
            # Wrong passwords (honouring each wait asked for) until the name is locked.
            messages: list[str] = []
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline:
                guess.get_by_label("User name").fill("ann")
                guess.get_by_label("Password", exact=True).fill(f"guess-{len(messages)}")
                guess.get_by_role("button", name="Sign in").click()
                settle(guess)
                text = guess.get_by_test_id("stAlert").first.inner_text()
                messages.append(text)
                if "locked for" in text:
                    break
                if wait := re.search(r"wait (\d+) s", text):
                    time.sleep(int(wait.group(1)))
            assert "locked for" in messages[-1], messages
            assert any("wait" in m for m in messages), messages  # slowed down first
            wrong = sum("Wrong user name or password" in m for m in messages)
            assert 3 <= wrong <= 10, messages  # locked by the tenth failure
            # Locked: even the right password is refused, with the same message.
            guess.get_by_label("Password", exact=True).fill("ann-password")
            guess.get_by_role("button", name="Sign in").click()
            settle(guess)
            expect(guess.get_by_text(re.compile("locked for")).first).to_be_visible()
            expect(guess.get_by_text("Signed in as")).to_have_count(0)
            guess.screenshot(path=ARTIFACTS / "accounts-4-locked.png")
        finally:
            browser.close()
