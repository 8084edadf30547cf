"""End to end in a real browser: `streamlit run app.py`, Debian's Chromium, Playwright.

One journey, as a new user would take it: open the app, drop a real PDF onto the
drop zone (a real drag-and-drop: dragenter, dragover and drop events carrying a
DataTransfer with the file), wait until it is indexed, find it in the Library,
ask a question in the chat, and read the answer with its source (file name, page,
chunk text); stop a second, slow answer, reload, and find the conversation kept.
No request may leave 127.0.0.1. The app runs with its real embedding model and the
fake OpenAI server as its LLM, so the streaming path is the one users get.
Screenshots of every page go to tests/artifacts/.

In CI (CI=true) a missing Chromium or Playwright fails the test; elsewhere it skips.
"""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import Text, cast, select

from rag import Settings
from rag.records.database import Database, database_url
from rag.records.schema import turns
from tests.fixtures.browser import ARTIFACTS, CHROMIUM, DROP_JS, LAUNCH_ARGS, LLM, settle
from tests.fixtures.paths import SAMPLES, missing, need_shared

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PDF = SAMPLES / "tracemonkey.pdf"
QUESTION = "How does TraceMonkey handle type-unstable loops?"

def test_drop_pdf_see_it_in_library_and_chat_with_sources(
    app_url: tuple[str, Path], request: pytest.FixtureRequest
) -> None:
    need_shared()
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is not installed")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        missing("playwright is not installed")
    url, data_dir = app_url
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            # Model output must never make the browser fetch anything off this machine.
            remote: list[str] = []
            page.on(
                "request",
                lambda r: remote.append(r.url) if "127.0.0.1" not in r.url else None,
            )

            # A fresh server whose first visitor opens a page's own URL still shows the
            # app's frame (Streamlit would otherwise run pages/upload.py on its own).
            page.goto(f"{url}/upload")
            nav = page.get_by_test_id("stSidebarNavItems")
            expect(nav.get_by_role("link", name="Library")).to_be_visible()
            expect(nav.get_by_role("link", name="ui")).to_have_count(0)

            # Chat, empty: it says what to do first.
            page.goto(url)
            expect(page.get_by_text("No documents in")).to_be_visible()
            expect(page.get_by_text("gpt-4o-mini via")).to_be_visible()  # the sidebar
            page.screenshot(path=ARTIFACTS / "1-chat-empty.png", full_page=True)

            # Upload: a real drag-and-drop onto the drop zone.
            nav.get_by_role("link", name="Upload").click()
            zone = page.locator('[data-testid="stFileUploaderDropzone"]')
            expect(zone).to_be_visible()
            page.evaluate(DROP_JS, [PDF.name, base64.b64encode(PDF.read_bytes()).decode()])
            expect(page.get_by_text("1 indexed in default")).to_be_visible(timeout=120_000)
            expect(page.get_by_role("button", name="Clear the list")).to_be_visible()
            settle(page)
            page.screenshot(path=ARTIFACTS / "2-upload-indexed.png", full_page=True)

            # Library: the document is listed, its chunks can be browsed.
            nav.get_by_role("link", name="Library").click()
            expect(page.get_by_text("Collection: default")).to_be_visible()
            # (the table is a canvas; the document picker below it is text)
            picker = page.get_by_role("combobox", name="Document")
            expect(picker).to_match_aria_snapshot(f'- combobox "Document": /{PDF.name}.*/')
            expect(page.get_by_text("Chunk 1 ·").first).to_be_visible()
            settle(page)
            page.screenshot(path=ARTIFACTS / "3-library.png", full_page=True)

            # Chat: ask, get a streamed answer with its numbered sources.
            nav.get_by_role("link", name="Chat").click()
            box = page.get_by_test_id("stChatInputTextArea")
            expect(box).to_be_enabled()
            box.fill(QUESTION)
            box.press("Enter")
            expect(page.get_by_text("According to the documents").first).to_be_visible(
                timeout=60_000
            )
            expect(page.get_by_text("Sources", exact=True)).to_be_visible()

            # What the page shows is exactly what was retrieved: compare with the saved turn.
            saved = _saved_sources(data_dir)
            first = saved[0]
            assert first["file"] == PDF.name and first["page"]
            label = page.get_by_test_id("stExpander").filter(has_text="[1]").first
            expect(label).to_contain_text(f"{PDF.name}, page {first['page']}")
            snippet = " ".join(first["text"].split())[:60]
            expect(page.get_by_text(snippet, exact=False).first).to_be_visible()
            expect(page.get_by_role("button", name="Download as Markdown")).to_be_visible()
            settle(page)
            page.screenshot(path=ARTIFACTS / "4-chat-answer.png", full_page=True)

            # Source 1 opens on its page, rendered, with the passage marked.
            caption = f"Page {first['page']} of 14: the passage is marked"
            expect(label.get_by_text(caption)).to_be_visible(timeout=30_000)
            image = label.get_by_test_id("stImage").locator("img").first
            expect(image).to_be_visible()
            shot = Image.open(io.BytesIO(image.screenshot(path=ARTIFACTS / "5-source-page.png")))
            pixels = shot.convert("RGB").getdata()
            marked = sum(1 for r, _, b in pixels if r > 200 and b < 170 and r - b > 60)
            assert marked > 2000, f"no highlight on the page image ({marked} marked pixels)"

            # A long answer can be stopped: what arrived is kept, and marked.
            request.node.stash[LLM].token_delay = 0.4
            box.fill("And how are nested loops traced?")
            box.press("Enter")
            expect(page.get_by_text("According to the documents").nth(1)).to_be_visible()
            stop = page.get_by_test_id("stChatInputStopButton")
            stop.click()
            expect(stop).to_be_hidden()  # the run has ended (and saved what it had)
            settle(page)

            # The conversation survives a reload. The stopped turn is saved when the
            # script run ends, at the LLM's next token (0.4 s apart here): under load a
            # reload came before that once, so reload until it is there (up to 30 s).
            deadline = time.monotonic() + 30
            while True:
                page.reload()
                expect(page.get_by_text("According to the documents").first).to_be_visible()
                stopped = page.get_by_text("Stopped before the end.")
                try:
                    expect(stopped).to_be_visible(timeout=3000)
                    break
                except AssertionError:
                    assert time.monotonic() < deadline, "the stopped answer was not saved"
            assert not remote, f"requests left the machine: {remote[:5]}"
        finally:
            browser.close()


def _saved_sources(data_dir: Path) -> list[dict[str, object]]:
    """The sources of the last answer the app saved (in the record store)."""
    db = Database(database_url(Settings(data_dir=data_dir)))
    query = select(cast(turns.c.answer, Text)).order_by(turns.c.id.desc()).limit(1)
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            raw = db.read(lambda c: c.execute(query).scalar())
            if raw is not None:
                return json.loads(raw)["docchat"]["sources"]
            time.sleep(0.2)
    finally:
        db.close()
    raise AssertionError("no conversation was saved")
