"""Fine-tuning jobs on the LLM's server, one record set per user, built once per user
and shared by every view of the engine.

Left out: the Q&A sets and evaluation runs (they live in the browser session that
made them, `finetune/`), and fine-tuning without an LLM server.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rag.components.generation import LLM
from rag.core.errors import ConfigError
from rag.finetune.jobs import FineTuneJobs
from rag.services.gate import owner
from rag.team.access import User


class FineTuneService:
    def __init__(self, *, llm: LLM | None, data_dir: Path) -> None:
        self.llm = llm
        self.data_dir = data_dir
        self._jobs: dict[str, FineTuneJobs] = {}
        self._guard = threading.Lock()

    def jobs(self, user: User) -> FineTuneJobs:
        """`user`'s fine-tuning jobs (sessions opening the page at once get one object)."""
        if self.llm is None:
            raise ConfigError("Fine-tuning needs an LLM: set OPENAI_API_KEY or OPENAI_BASE_URL.")
        key = owner(user)
        with self._guard:
            if key not in self._jobs:
                self._jobs[key] = FineTuneJobs(self.llm, self.data_dir, key)
            return self._jobs[key]
