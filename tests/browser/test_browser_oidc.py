"""OIDC sign-in end to end: `streamlit run app.py` with DOCCHAT_AUTH=oidc, a mock
identity provider, Debian's Chromium, Playwright.

The provider is `oidc_provider_mock` (any client id and secret; its authorization
page is a form where you type the subject, which it also sends as the e-mail claim)
on 127.0.0.1. Streamlit's own `st.login` talks to it, configured by a secrets file
of the test's own (`--secrets.files`).

The journey: a visitor sees only the sign-in page; alice@example.com (named by
DOCCHAT_ADMIN_USER) signs in through the provider, is the administrator (the Users
page is hers), and uploads a Markdown file by a real drop. In a second browser
context (its own cookies) bob@example.com signs in: no administrator, no Users page,
none of alice's collections or documents. A reload keeps him signed in; "Sign out"
goes through the provider's end-session page back to the sign-in page, and a reload
stays signed out. No request may leave 127.0.0.1 (the mock's pages link a CDN
stylesheet: the test serves them without it), and the server log has no traceback.

In CI (CI=true) a missing Chromium, Playwright or mock provider fails the test;
elsewhere it skips.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.fixtures.browser import (
    ARTIFACTS,
    CHROMIUM,
    DROP_JS,
    LAUNCH_ARGS,
    need_browser,
    serve,
    settle,
)
from tests.fixtures.paths import free_port, missing

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN = "alice@example.com"
OTHER = "bob@example.com"
DOC = "oidc-notes.md"
DOC_TEXT = "# Quarterly notes\n\nThe wombat migration finished in March. Only alice reads this.\n"

# The mock's pages without their CDN stylesheet (nothing may leave this machine).
PROVIDER_BASE = """<!doctype html>
<html lang="en">
  <main class="container">{% block content %}{{ content }}{% endblock %}</main>
</html>
"""


@pytest.fixture
def provider() -> Iterator[str]:
    """The mock OIDC provider on 127.0.0.1 (a free port), in a thread; its base URL."""
    try:
        import jinja2
        import werkzeug.serving
        from oidc_provider_mock import app as provider_app
    except ImportError:
        missing("oidc-provider-mock is not installed")
    flask_app = provider_app()
    flask_app.jinja_loader = jinja2.ChoiceLoader(
        [jinja2.DictLoader({"_base.html": PROVIDER_BASE}), flask_app.jinja_loader]
    )
    server = werkzeug.serving.make_server("127.0.0.1", 0, flask_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@pytest.fixture
def oidc_app(tmp_path: Path, provider: str) -> Iterator[str]:
    """The app with DOCCHAT_AUTH=oidc against the mock provider; its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        f'redirect_uri = "{url}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "docchat-test"\n'
        f'client_secret = "{secrets.token_hex(16)}"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n',
        encoding="utf-8",
    )
    env = {"DOCCHAT_AUTH": "oidc", "DOCCHAT_ADMIN_USER": ADMIN}
    for served, _ in serve(tmp_path, None, env, ("--secrets.files", str(secrets_file)), port):
        yield served


def test_oidc_sign_in_admin_and_user_see_their_own(
    oidc_app: str, provider: str, tmp_path: Path
) -> None:
    need_browser()
    from playwright.sync_api import expect, sync_playwright

    url = oidc_app
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    remote: list[str] = []

    def new_page(browser: Any) -> Any:
        """A page in a fresh context (its own cookies) that records and blocks any
        request off 127.0.0.1."""
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.on(
            "request",
            lambda r: remote.append(r.url) if urlparse(r.url).hostname != "127.0.0.1" else None,
        )
        context.route(lambda u: urlparse(u).hostname != "127.0.0.1", lambda route: route.abort())
        page = context.new_page()
        page.set_default_timeout(30_000)
        return page

    def sign_in(page: Any, email: str) -> None:
        """From the sign-in page through the provider's form back into the app."""
        page.goto(url)
        heading = page.get_by_role("heading", name="Sign in to DocChat")
        expect(heading).to_be_visible(timeout=30_000)  # a fresh server's first run is slow
        # The sign-in page is the only page: no navigation to any other.
        expect(page.get_by_test_id("stSidebarNavItems")).to_have_count(0)
        for name in ("Chat", "Upload", "Library", "Users"):
            expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
        page.get_by_role("button", name="Sign in with single sign-on").click()
        page.wait_for_url(f"{provider}/oauth2/authorize**")
        expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
        page.locator('input[name="sub"]').fill(email)
        page.get_by_role("button", name="Authorize", exact=True).click()
        page.wait_for_url(lambda u: u.startswith(f"{url}/") and "oauth2callback" not in u)
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar).to_contain_text(f"Signed in as {email}", timeout=30_000)

    md = tmp_path / DOC
    md.write_text(DOC_TEXT, encoding="utf-8")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            # -- alice: the administrator --------------------------------------------
            page = new_page(browser)
            sign_in(page, ADMIN)
            sidebar = page.get_by_test_id("stSidebar")
            expect(sidebar).to_contain_text(f"Signed in as {ADMIN} (administrator)")
            nav = page.get_by_test_id("stSidebarNavItems")
            expect(nav.get_by_role("link", name="Users")).to_be_visible()
            expect(nav.get_by_role("link", name="Library")).to_be_visible()

            nav.get_by_role("link", name="Upload").click()
            expect(page.get_by_test_id("stFileUploaderDropzone")).to_be_visible(timeout=30_000)
            page.evaluate(DROP_JS, [DOC, base64.b64encode(md.read_bytes()).decode()])
            indexed = page.get_by_text("1 indexed in")
            expect(indexed).to_be_visible(timeout=120_000)
            collection = indexed.inner_text().split("1 indexed in ", 1)[1].split(".")[0]
            picker = sidebar.get_by_role("combobox", name="Collection")
            expect(picker).to_match_aria_snapshot(f'- combobox "Collection": {collection}')
            settle(page)
            page.screenshot(path=ARTIFACTS / "oidc-signed-in.png", full_page=True)

            nav.get_by_role("link", name="Library").click()
            expect(page.get_by_text(f"Collection: {collection}")).to_be_visible()
            documents = page.get_by_role("combobox", name="Document")
            expect(documents).to_match_aria_snapshot(f'- combobox "Document": /{DOC}.*/')

            # -- bob, in a browser of his own: an ordinary user ---------------------------
            page = new_page(browser)
            sign_in(page, OTHER)
            sidebar = page.get_by_test_id("stSidebar")
            nav = page.get_by_test_id("stSidebarNavItems")
            expect(nav.get_by_role("link", name="Library")).to_be_visible()
            expect(sidebar).not_to_contain_text("(administrator)")
            expect(nav.get_by_role("link", name="Users")).to_have_count(0)

            # The collection selector: his own first collection (by his name, empty),
            # and none of alice's.
            picker = sidebar.get_by_role("combobox", name="Collection")
            expect(picker).to_match_aria_snapshot(f'- combobox "Collection": {OTHER}')
            picker.click()
            options = page.get_by_role("option")
            expect(options.first).to_be_visible()
            offered = [o.strip() for o in options.all_inner_texts()]
            assert collection not in offered, offered
            page.keyboard.press("Escape")
            expect(options).to_have_count(0)

            # His Library: no collections at all, so not alice's document.
            nav.get_by_role("link", name="Library").click()
            expect(page.get_by_role("heading", name="Library")).to_be_visible()
            expect(page.get_by_text("No collections yet.")).to_be_visible()
            expect(page.get_by_role("combobox", name="Document")).to_have_count(0)
            expect(page.get_by_text(DOC)).to_have_count(0)
            expect(page.get_by_text(f"Collection: {collection}")).to_have_count(0)

            # A reload keeps him signed in.
            page.reload()
            expect(sidebar).to_contain_text(f"Signed in as {OTHER}", timeout=30_000)
            expect(nav.get_by_role("link", name="Users")).to_have_count(0)

            # Sign out: through the provider's end-session page, back to sign-in.
            sidebar.get_by_role("button", name="Sign out").click()
            end = page.get_by_role("button", name="End session")
            expect(end).to_be_visible(timeout=30_000)
            end.click()
            signin = page.get_by_role("heading", name="Sign in to DocChat")
            expect(signin).to_be_visible(timeout=30_000)
            expect(page.get_by_text("Signed in as")).to_have_count(0)
            page.reload()
            expect(signin).to_be_visible(timeout=30_000)
            expect(page.get_by_role("button", name="Sign in with single sign-on")).to_be_visible()
            expect(page.get_by_text("Signed in as")).to_have_count(0)
            expect(page.get_by_test_id("stSidebarNavItems")).to_have_count(0)
        finally:
            browser.close()
    assert not remote, f"requests left the machine: {remote[:5]}"
