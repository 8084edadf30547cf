"""Fine-tuning jobs on the LLM's server, one record set per user (in the record
store), each user's `FineTuneJobs` built once and shared by every view of the engine.

Left out: the Q&A sets and evaluation runs (they live in the browser session that
made them, `finetune/`), and fine-tuning without an LLM server.
"""

from __future__ import annotations

import threading

from rag.components.generation import LLM
from rag.core.errors import ConfigError
from rag.finetune.jobs import FineTuneJobs
from rag.records.database import Database
from rag.services.gate import owner
from rag.team.access import User


class FineTuneService:
    def __init__(self, *, llm: LLM | None, records: Database) -> None:
        self.llm = llm
        self.records = records
        self._jobs: dict[str, FineTuneJobs] = {}
        self._guard = threading.Lock()

    def jobs(self, user: User) -> FineTuneJobs:
        """`user`'s fine-tuning jobs (sessions opening the page at once get one object)."""
        if self.llm is None:
            raise ConfigError("Fine-tuning needs an LLM: set OPENAI_API_KEY or OPENAI_BASE_URL.")
        key = owner(user)
        with self._guard:
            if key not in self._jobs:
                self._jobs[key] = FineTuneJobs(self.llm, self.records, key)
            return self._jobs[key]
