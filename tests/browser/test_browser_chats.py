"""Many conversations in a real browser (Debian's Chromium, Playwright, `streamlit run`).

One user, two collections: a conversation in each, the first one filtered to one
document; switching between them from the sidebar list restores each one's
collection and filter, and so does a reload. The list's search finds a conversation
by a word of its answer; rename and delete work. Regenerate shows "answer 2 of 2"
with arrows back to the first answer; editing a question starts a branch, and both
branches stay reachable. "Chat with this document" (the Library) starts a
conversation whose next answer cites only that document. The app runs with its real
embedding model and the fake OpenAI server (which names each conversation).
Screenshots go to tests/artifacts/ (chats-list.png is the README's).

In CI (CI=true) a missing Chromium or Playwright fails the test; elsewhere it skips.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.browser import ARTIFACTS, chat_page, serve_indexed, settle
from tests.fixtures.fake_openai import Json, _default_reply

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CATS = b"# Cats\n\nCats eat fish and mice. Cats sleep sixteen hours a day in warm places.\n"
DOGS = b"# Dogs\n\nDogs eat meat and bones. Dogs sleep twelve hours a day in baskets.\n"
GARDEN = b"# Garden\n\nThe tomatoes in the garden need water every morning in July.\n"
INDEX = f"""
import sys
from rag import DocChat, Settings
app = DocChat.open(Settings(data_dir=sys.argv[1]))
app.ingest("cats.md", {CATS!r})
app.ingest("dogs.md", {DOGS!r})
app.create_collection("notes")
app.ingest("garden.md", {GARDEN!r}, collection="notes")
"""
TITLES = {"cats eat": "Cat food", "tomatoes": "Watering tomatoes", "dogs": "About dogs"}


def reply(body: Json) -> str:
    """Conversation titles by the question's words; everything else the default."""
    messages = body["messages"]
    if "Name the conversation" in str(messages[0].get("content", "")):
        question = str(messages[-1]["content"]).lower()
        return next((t for k, t in TITLES.items() if k in question), "A conversation")
    return _default_reply(body)


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    yield from serve_indexed(tmp_path, INDEX, reply)


def ask(page: Any, question: str) -> None:
    from playwright.sync_api import expect

    box = page.get_by_test_id("stChatInputTextArea")
    expect(box).to_be_enabled()
    box.fill(question)
    box.press("Enter")
    settle(page)


def click_once(button: Any) -> None:
    """Click a button once the run has drawn exactly one (a run's stale elements stay
    on the page until it ends)."""
    from playwright.sync_api import expect

    expect(button).to_have_count(1)
    button.click()


def choose(page: Any, box: Any, option: Any) -> None:
    """Open a dropdown and pick `option`, opening it again when a run that was still
    drawing the page closed it (seen on a busy machine: the box focused, no menu)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(5):
        box.click()
        found = page.get_by_role("option", name=option)
        try:
            found.first.wait_for(timeout=3_000)
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            continue
        found.first.click()
        return
    raise AssertionError(f"the dropdown never offered {option}")


def sidebar(page: Any) -> Any:
    return page.get_by_test_id("stSidebar")


def listed(page: Any) -> list[str]:
    """The titles in the sidebar's conversation list."""
    # (Streamlit marks a keyed widget's boxes with the class st-key-<key>; a button with
    # a tooltip is drawn twice, one of them hidden)
    buttons = page.locator('[class*="st-key-chat-open-"] button:visible')
    return [t.strip() for t in buttons.all_inner_texts()]


def test_conversations_switch_search_regenerate_edit_and_focus(app_url: str) -> None:
    from playwright.sync_api import expect

    with chat_page(app_url) as page:
        side = sidebar(page)

        # A conversation on "default", filtered to cats.md.
        docs = side.get_by_role("combobox", name="Only these documents")
        docs.click()
        page.get_by_role("option", name="cats.md").click()
        page.keyboard.press("Escape")
        ask(page, "What do cats eat?")
        # The first question loads the embedding model: seconds more on a busy machine.
        expect(side.get_by_role("button", name="Cat food")).to_be_visible(timeout=60_000)
        expect(page.get_by_test_id("stExpander").first).to_contain_text("cats.md")

        # Another on "notes".
        side.get_by_role("combobox", name="Collection").click()
        page.get_by_role("option", name="notes").click()
        settle(page)
        ask(page, "When do the tomatoes need water?")
        expect(side.get_by_role("button", name="Watering tomatoes")).to_be_visible()
        assert listed(page) == ["Watering tomatoes", "Cat food"]  # newest first
        settle(page)
        page.screenshot(path=ARTIFACTS / "chats-list.png")

        # Switch back: its collection and its filter come back with it.
        side.get_by_role("button", name="Cat food").click()
        settle(page)
        expect(page.get_by_role("heading", name="Cat food")).to_be_visible()
        expect(side.get_by_role("combobox", name="Collection")).to_have_value("default")
        expect(page.get_by_text("Only from: cats.md")).to_be_visible()
        expect(page.get_by_text("What do cats eat?", exact=True)).to_be_visible()

        # A reload keeps the open conversation, its collection and its filter.
        page.reload()
        settle(page)
        expect(page.get_by_role("heading", name="Cat food")).to_be_visible()
        expect(page.get_by_text("Only from: cats.md")).to_be_visible()
        side.get_by_role("button", name="Watering tomatoes").click()
        settle(page)
        expect(page.get_by_text("When do the tomatoes need water?", exact=True)).to_be_visible()
        expect(page.get_by_text("Only from:")).to_have_count(0)

        # The search finds a conversation by a word of its answer.
        search = side.get_by_label("Search conversations")
        search.fill("tomatoes")
        search.press("Enter")
        settle(page)
        assert listed(page) == ["Watering tomatoes"]
        search.fill("")
        search.press("Enter")
        settle(page)

        # Regenerate: answer 2 of 2, and the arrows lead back to the first.
        page.get_by_role("button", name="Regenerate").click()
        settle(page)
        expect(page.get_by_text("answer 2 of 2")).to_be_visible()
        click_once(page.get_by_role("button", name="Previous"))
        settle(page)
        expect(page.get_by_text("answer 1 of 2")).to_be_visible()

        # Edit the question: a new branch; the old one is reachable the same way.
        page.get_by_role("button", name="Edit question").click()
        page.get_by_label("Edit the question").fill("Which vegetables grow in the garden?")
        page.get_by_role("button", name="Send", exact=True).click()
        settle(page)
        expect(page.get_by_text("Which vegetables grow in the garden?").first).to_be_visible()
        expect(page.get_by_text("answer 3 of 3")).to_be_visible()
        click_once(page.get_by_role("button", name="Previous"))
        settle(page)
        expect(page.get_by_text("When do the tomatoes need water?", exact=True)).to_be_visible()
        expect(page.get_by_text("answer 2 of 3")).to_be_visible()

        # Rename, then delete.
        page.get_by_role("button", name="Rename").click()
        page.get_by_label("Title").fill("Garden questions")
        page.get_by_role("button", name="Save title").click()
        settle(page)
        expect(side.get_by_role("button", name="Garden questions")).to_be_visible()
        page.get_by_role("button", name="Delete").click()
        page.get_by_role("button", name="Yes, delete it").click()
        expect(side.get_by_role("button", name="Garden questions")).to_have_count(0)
        assert listed(page) == ["Cat food"]

        # "Chat with this document" from the Library: the answer cites only it.
        side.get_by_role("combobox", name="Collection").click()
        page.get_by_role("option", name="default").click()
        settle(page)
        page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Library").click()
        # The whole Library drawn (its last section is the chunk browser) before a
        # dropdown is opened: a run still drawing the page closes it.
        expect(page.get_by_text("Search in this document's chunks")).to_be_visible(timeout=60_000)
        settle(page)
        choose(page, page.get_by_role("combobox", name="Document"), re.compile("dogs.md"))
        settle(page)
        page.get_by_role("button", name="Chat with this document").first.click()
        settle(page)
        expect(page.get_by_text("Only from: dogs.md")).to_be_visible()
        ask(page, "What do dogs and cats eat?")
        sources = page.get_by_test_id("stExpander")
        expect(sources.first).to_contain_text("dogs.md")
        assert all("dogs.md" in s for s in sources.all_inner_texts())
        # The filter can be removed.
        page.get_by_role("button", name="Remove filter").click()
        settle(page)
        expect(page.get_by_text("Only from:")).to_have_count(0)
