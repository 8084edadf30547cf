"""Tuning a collection's embedding model from the Library, in a real browser.

A collection of four short documents; on the Library the section "Tune search on this
collection" says the base model is in use; a tuning on pseudo-queries (1 epoch of at
most 8 pairs, 4 a step: 2 training steps, so the test takes a minute, not the
defaults' many) is started, followed (stage, progress, Cancel) until the gate decides,
and the decision is shown with the held-out figures beside the table of the
collection's tuned models. Then one click switches: back to the base model when the
tuned one was swapped in, over to the tuned one when it was refused; the line saying
which model search uses changes with it. The screenshot (tests/artifacts/
tuning-library.png) is also docs/tuning.png.

In CI (CI=true) a missing Chromium or Playwright fails the test; elsewhere it skips.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.browser import ARTIFACTS, chat_page, serve_indexed, settle
from tests.fixtures.fake_openai import _default_reply
from tests.fixtures.paths import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOCS = {
    "cats.md": "# Cats\n\nCats eat fish and mice. Cats sleep sixteen hours a day in warm "
    "places. A cat grooms its fur with a rough tongue. Kittens open their eyes after "
    "ten days.\n",
    "dogs.md": "# Dogs\n\nDogs eat meat and bones. Dogs sleep twelve hours a day in "
    "baskets. A dog pants to cool down on hot days. Puppies lose their milk teeth at "
    "four months.\n",
    "garden.md": "# Garden\n\nThe tomatoes in the garden need water every morning in July. "
    "Slugs eat the lettuce at night. Compost feeds the soil over the winter. Beans "
    "climb the poles by the fence.\n",
    "bikes.md": "# Bikes\n\nA bicycle chain needs oil every few hundred kilometres. Tyres "
    "lose pressure slowly in cold weather. Brake pads wear faster in the rain. A "
    "loose saddle creaks on every bump.\n",
}
INDEX = f"""
import sys
from rag import DocChat, Settings
app = DocChat.open(Settings(data_dir=sys.argv[1]))
for name, text in {DOCS!r}.items():
    app.ingest(name, text.encode())
"""
# 1 epoch of at most 8 pairs, 4 a step: 2 training steps (~6 s a step of 32 on CPU); a
# worker in the app runs the job, as by default (tests/conftest.py sets 0 workers,
# which runs a job before its submit returns: the page would have nothing to follow).
TUNE_ENV = {"DOCCHAT_TUNE_EPOCHS": "1", "DOCCHAT_TUNE_MAX_PAIRS": "8",
            "DOCCHAT_TUNE_BATCH_SIZE": "4", "DOCCHAT_WORKERS": "1"}  # fmt: skip
SHOT = ARTIFACTS / "tuning-library.png"
DOCS_SHOT = ROOT / "docs" / "tuning.png"


@pytest.fixture
def app_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in TUNE_ENV.items():  # the served app's environment is this one's
        monkeypatch.setenv(name, value)
    yield from serve_indexed(tmp_path, INDEX, _default_reply)


def test_tune_from_the_library_then_switch_models(app_url: str) -> None:
    from playwright.sync_api import expect

    with chat_page(app_url) as page:
        page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Library").click()
        settle(page)
        heading = page.get_by_role("heading", name="Tune search on this collection")
        expect(heading).to_be_visible()
        base_line = page.get_by_text("Search uses the base embedding model")
        expect(base_line).to_be_visible()
        expect(page.get_by_text("Pseudo-queries from the documents")).to_be_visible()
        # No studio pairs in this session: that source is not offered.
        expect(page.get_by_text("The fine-tuning studio's reviewed pairs")).to_have_count(0)

        page.get_by_role("button", name="Start tuning").click()
        # Followed: the Cancel button shows while it runs, and goes when it ends.
        cancel = page.get_by_role("button", name="Cancel tuning")
        expect(cancel).to_be_visible(timeout=30_000)
        ended = page.get_by_text(
            re.compile(r"The tuning started .* (is in use|was not swapped in)")
        )
        expect(ended).to_be_visible(timeout=90_000)
        expect(cancel).to_have_count(0)
        settle(page)
        # The decision comes with the held-out figures, base -> tuned, and the split.
        # (escape_markdown puts a zero-width space after "@": no mail link is made.)
        expect(ended).to_contain_text(re.compile("hit@\u200b?5 \\d\\.\\d+ \u2192 \\d\\.\\d+"))
        expect(ended).to_contain_text("held-out question(s)")
        # Collections, documents and the tuned models.
        expect(page.get_by_test_id("stDataFrame")).to_have_count(3)
        swapped = "is in use" in ended.inner_text()
        tuned_line = page.get_by_text("Search uses the tuned embedding model tuned:")
        expect(tuned_line if swapped else base_line).to_be_visible()
        heading.evaluate("h => h.scrollIntoView({block: 'start'})")  # the section, whole
        settle(page)
        page.screenshot(path=SHOT)
        shutil.copyfile(SHOT, DOCS_SHOT)

        # One click each way (4 chunks are re-embedded each time).
        switches = ["Use the base model", "Use this model"]
        for button in switches if swapped else switches[::-1]:
            page.get_by_role("button", name=button).click()
            settle(page)
            expect(page.get_by_text("Search on default now uses")).to_be_visible()
            in_use = base_line if button == "Use the base model" else tuned_line
            expect(in_use).to_be_visible()
            expect(tuned_line if in_use is base_line else base_line).to_have_count(0)
            expect(ended).to_have_count(0)  # the tuning's outcome is old news now
