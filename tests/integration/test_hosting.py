"""The app process's engine follows its settings: one engine per settings, with its
own workers and API, and the previous ones stopped (`rag/hosting.py`, `pages/_ui.py`).

Before, a change of settings built a new engine for the pages while the workers (kept
per queue) and the API (kept per `repr(settings)`, which hides secrets, and unable to
bind its port a second time) went on with the first engine, which was never closed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import pages._ui as ui
from rag.jobs import Workers
from tests.fixtures.api import finished
from tests.fixtures.paths import free_port

CATS = b"# Cats\n\nCats sleep most of the day and eat fish.\n"


def stopped(workers: Workers) -> bool:
    """Whether the workers were stopped (in the background, so allow it a moment)."""
    deadline = time.monotonic() + 10
    while not workers.stopped and time.monotonic() < deadline:
        time.sleep(0.05)
    return workers.stopped


def uploaded(h: httpx.Client, collection: str) -> dict[str, Any]:
    r = h.post(f"/v1/collections/{collection}/documents", files=[("files", ("cats.md", CATS))])
    assert r.status_code == 202, r.text
    return finished(h, r.json())


def test_changed_settings_move_workers_and_api_to_the_new_engine(
    fake_embedder: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCCHAT_WORKERS", "1")
    monkeypatch.setenv("DOCCHAT_API", "true")
    monkeypatch.setenv("DOCCHAT_API_PORT", str(free_port()))
    first = ui.shared_engine()
    address = ui.api_address()
    assert address.startswith("http://127.0.0.1:"), address
    first_workers = first.start_workers()
    assert first_workers is not None and ui.shared_engine() is first  # same settings
    h = httpx.Client(base_url=address.removesuffix("/v1"), timeout=30)
    uploaded(h, "pets")
    assert [c["name"] for c in h.get("/v1/collections").json()["data"]] == ["pets"]

    # Another data dir: a new engine, whose workers and API answer on the same port.
    monkeypatch.setenv("DOCCHAT_DATA_DIR", str(tmp_path / "other"))
    second = ui.shared_engine()
    assert second is not first and stopped(first_workers)
    assert ui.api_address() == address  # the port was freed and taken again
    assert h.get("/v1/collections").json()["data"] == []  # the new data dir's
    uploaded(h, "notes")  # run by the new engine's workers, into its store
    assert [d.name for d in second.documents("notes")] == ["cats.md"]
    assert second.embedder.calls > 0  # type: ignore[attr-defined]

    # A changed secret alone (hidden from repr(settings)) is a change too.
    second_workers = second.start_workers()
    assert second_workers is not None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-another-key")
    third = ui.shared_engine()
    assert third is not second and stopped(second_workers)
    assert third.settings.openai_api_key == "sk-another-key"
    assert ui.api_address() == address
    assert [c["name"] for c in h.get("/v1/collections").json()["data"]] == ["notes"]
