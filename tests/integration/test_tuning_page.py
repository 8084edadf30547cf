"""The Library's tuning section in Streamlit's AppTest (the browser test,
tests/browser/test_browser_tuning.py, runs a whole tuning and the switches).

Here, on the fake embedder with 0 workers (a job runs before its start returns): the
model line, the sources offered (the studio's reviewed pairs only when this session
has some of this collection), a question file naming no chunk refused at once, and a
job that fails (the fake embedder cannot be trained) said to have failed, with why.
"""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

import pages._ui as ui
from rag import QAPair
from tests.fixtures.app import CATS, DOGS, start, upload

STUDIO = "The fine-tuning studio's reviewed pairs"


def shown(at: AppTest, kind: str) -> str:
    # Messages are Markdown-escaped for display; compare what a reader sees.
    return "\n".join(re.sub(r"\\(.)", r"\1", str(e.value)) for e in at.get(kind))


def start_button(at: AppTest):  # type: ignore[no-untyped-def]
    return at.button(key="tune-start-default")


def test_tuning_section_sources_and_a_failed_job(fake_embedder: None, env: Path) -> None:
    at = upload(start(), ("cats.md", CATS), ("dogs.txt", DOGS))
    at.switch_page("pages/library.py").run()
    assert not at.exception, at.exception
    assert "Tune search on this collection" in [h.value for h in at.subheader]
    assert "Search uses the **base** embedding model fake-hash." in shown(at, "markdown")
    source = at.radio(key="tune-source-default")
    assert len(source.options) == 2  # no studio pairs in this session

    # A question file whose rows name no chunk: refused before anything is queued.
    source.set_value("pairs").run()
    assert start_button(at).disabled  # no file yet
    csv = b"question,chunk_id\nWhat do cats eat?,no-such-chunk\n"
    at.file_uploader(key="tune-file-default").set_value(("q.csv", csv, "text/csv")).run()
    start_button(at).click().run()
    assert not at.exception, at.exception
    assert "no row names a chunk" in shown(at, "error")
    assert not ui.engine().tuning.jobs("default")

    # The studio's reviewed pairs of this collection, one per document, are offered.
    chunks = ui.engine().all_chunks("default")
    at.session_state["ft_source"] = "default"
    at.session_state["ft_pairs"] = [
        QAPair(f"What does {c.file} say?", c.text[:40], c.id, c.doc_id, c.file) for c in chunks
    ]
    at.run()
    source = at.radio(key="tune-source-default")
    assert STUDIO in source.options[-1]
    source.set_value("studio").run()
    assert f"{len(chunks)} reviewed pair(s)" in shown(at, "caption")

    # Started: the fake embedder is no model to train, so the job fails, and says why.
    start_button(at).click().run()
    assert not at.exception, at.exception
    (job,) = ui.engine().tuning.jobs("default")
    assert job.status == "failed" and job.source == "studio"
    assert "not a local sentence-transformers model" in job.error and "http" not in job.error
    assert f"failed: {job.error}"[:40] in shown(at, "error").replace("\u200b", "")
    assert "Search uses the **base**" in shown(at, "markdown")  # the model stays
