"""The claim check in a real browser (Debian's Chromium, Playwright, `streamlit run`).

The fake OpenAI server is made to cite wrongly on purpose: one sentence of its answer
is backed by the source it cites, the other gives a figure that source does not hold.
The chat underlines that sentence with its reason ("12.4 % not in [1]"), says "1 of 2
sentences backed by their sources", and a click on the backed sentence opens its
evidence, marked, in the source below. A reload shows the same (the check is saved
with the conversation). The screenshot is docs/claims.png's.

In CI (CI=true) a missing Chromium or Playwright fails the test; elsewhere it skips.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.browser import ARTIFACTS, chat_page, serve_indexed, settle
from tests.fixtures.fake_openai import Json, _default_reply

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPORT = (
    b"# Results\n\nRevenue grew to $15.3 billion in 2023, up from $14.1 billion. "
    b"Operating costs were 1,577 million dollars for the year.\n"
)
WRONG = "Revenue grew to $15.3 billion in 2023 [1]. Operating costs were 12.4 % of revenue [1]."
INDEX = f"""
import sys
from rag import DocChat, Settings
DocChat.open(Settings(data_dir=sys.argv[1])).ingest("report.md", {REPORT!r})
"""


def reply(body: Json) -> str:
    """The answer cites [1] for a figure [1] does not have; other requests as usual."""
    system = str(body["messages"][0].get("content", ""))
    return WRONG if system.startswith("You are DocChat") else _default_reply(body)


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    yield from serve_indexed(tmp_path, INDEX, reply)


def test_unbacked_sentences_are_marked_and_backed_ones_open_their_evidence(
    app_url: str,
) -> None:
    from playwright.sync_api import expect

    with chat_page(app_url) as page:
        box = page.get_by_test_id("stChatInputTextArea")
        expect(box).to_be_enabled()
        box.fill("How did revenue and costs develop?")
        box.press("Enter")
        settle(page)

        for attempt in ("asked", "reloaded"):
            answer = page.get_by_test_id("stChatMessage").nth(1)
            flagged = answer.locator('span[style*="underline"]')
            expect(flagged).to_have_count(1, timeout=30_000)  # once the answer is saved
            expect(flagged).to_contain_text("Operating costs were 12.4 % of revenue")
            expect(answer.get_by_text("⚠ 12.4 % not in [1]")).to_be_visible()
            backed = answer.get_by_text("1 of 2 sentences backed by their sources")
            expect(backed).to_be_visible()
            if attempt == "asked":
                page.reload()
                settle(page)

        # The backed sentence opens its evidence, marked where it stands.
        page.get_by_text("Each sentence and its evidence").click()
        page.get_by_role("button", name="Revenue grew to $15.3 billion").click()
        settle(page)
        source = page.get_by_test_id("stExpander").filter(has_text="[1] report.md")
        expect(source.get_by_text("In its document (marked):")).to_be_visible()
        expect(source.locator("mark").first).to_contain_text("Revenue grew to $15.3 billion")
        page.screenshot(path=ARTIFACTS / "claims-marked.png")
