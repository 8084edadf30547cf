"""The root conftest: the test environment, the shared fixtures, the fakes' plugins.

Fixtures shared across files live in tests/fixtures/ and are loaded here as plugins
(`pytest_plugins`), so a test names a fixture without importing it; plain helpers
(paths, checks) are imported by name from their modules. Layer-specific fixtures and
rules are in tests/unit, tests/integration and tests/browser's own conftest.py.
"""

from __future__ import annotations

import os
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

# Helpers in tests/fixtures assert too (check_blocks, start, upload): rewritten like a
# test's own asserts, so a failure shows its values.
pytest.register_assert_rewrite("tests.fixtures")

from rag import Settings  # noqa: E402 - after the environment above

pytest_plugins = [
    "tests.fixtures.fake_openai",  # openai_server
    "tests.fixtures.app",  # env, fake_embedder (AppTest page tests)
    "tests.fixtures.chroma_server",  # server (a real `chroma run`)
    "tests.fixtures.browser",  # app_url (`streamlit run` with the fake LLM)
    "tests.fixtures.postgres",  # postgres_server, pg_url (a real PostgreSQL)
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", min_score=0.0)
