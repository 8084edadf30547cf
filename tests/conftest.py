"""Shared fixtures: settings in a temp dir, a DocChat on the fake embedder, data paths."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
# The app starts the HTTP API beside itself on port 8502 (DOCCHAT_API); app processes
# and AppTest runs of the tests do not, unless a test asks (with a port of its own).
os.environ["DOCCHAT_API"] = "false"
# Nor do they start background workers (consumer threads that would outlive the test):
# with 0 a job runs in the process that submits it, before the submit returns. Tests of
# the workers themselves build their settings with workers and stop them after.
os.environ["DOCCHAT_WORKERS"] = "0"

from rag import DocChat, Settings
from tests.fixtures.fakes import HashEmbedder

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SAMPLES = SHARED / "pdfs" / "sample-files"
BROKEN = SHARED / "pdfs" / "broken"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(why: str) -> None:
    """Something a test needs is not here: a failure in CI (CI=true), a skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{why} (CI=true: this test must run)")
    pytest.skip(why)


def need_shared() -> None:
    """Shared data is part of the CI checkout; outside it a test may skip."""
    if not SHARED.is_dir():
        missing(f"shared data missing at {SHARED}")


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (nothing listens on it now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", min_score=0.0)


@pytest.fixture
def app(settings: Settings) -> Iterator[DocChat]:
    yield DocChat(settings, embedder=HashEmbedder(), llm=None)


@pytest.fixture(scope="session")
def real_embedder():  # type: ignore[no-untyped-def]
    from rag.components.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder("all-MiniLM-L6-v2")


from tests.fixtures.fake_openai import openai_server  # noqa: E402,F401 - a fixture for every test file
