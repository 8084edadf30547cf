"""The app process's engine: one per settings, with its background workers and the
HTTP API beside it; when the settings change (the environment or the secrets file),
the new engine takes over and the old one's API and workers are stopped.

Streamlit reruns every page on every click, so the pages ask for the engine each
time (`Host.engine`); the same settings give the same engine. Settings are compared
whole, secrets included (their `repr` hides secrets, so a changed key would look
unchanged).

On a switch the old API is stopped at once (the new one takes its port), and the old
workers are stopped in a background thread: they finish the jobs under way first,
which may take minutes, and no page waits for that. A session still answering with
the old engine finishes its answer; the old model and LLM client are released when
nothing uses them any more.

Left out: several settings at once in one process (the sessions of one app share its
environment, so there is one current engine).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from rag.core.errors import RagError
from rag.core.settings import Settings
from rag.engine import DocChat


class Host:
    """The current engine of this process, rebuilt when the settings change."""

    def __init__(self, build: Callable[[Settings], DocChat] = DocChat.open) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._engine: DocChat | None = None
        self._api: tuple[str, int] | None = None  # where the current engine's API listens
        self._api_stop: Callable[[], None] | None = None
        self._api_status = ""

    def engine(self, settings: Settings) -> DocChat:
        """The engine for `settings`, its workers started (`DOCCHAT_WORKERS`); a
        change of settings stops the previous engine's API and workers."""
        old = None
        with self._lock:
            if self._engine is None or self._engine.settings != settings:
                old = self._retire_locked()
                self._engine = self._build(settings)
            engine = self._engine
            engine.start_workers()  # once per engine, and never for a retired one
        if old is not None:
            threading.Thread(target=old.close, name="docchat-retire", daemon=True).start()
        return engine

    def api(self, settings: Settings, host: str) -> str:
        """Start the current engine's API on host:`settings.api_port` once; returns its
        address, or why it did not start."""
        engine = self.engine(settings)
        with self._lock:
            where = (host, settings.api_port)
            if self._engine is engine and self._api != where:
                self._stop_api_locked()
                self._api = where
                # Imported here: FastAPI and uvicorn load only when an API is served.
                from rag.api import serve_in_thread

                try:
                    self._api_stop = serve_in_thread(engine, host, settings.api_port)
                except RagError as e:
                    self._api_status = f"not started: {e}"
                else:
                    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
                    self._api_status = f"http://{shown}:{settings.api_port}/v1"
            return self._api_status

    def close(self) -> None:
        """Stop the API and the workers, and wait for the jobs under way."""
        with self._lock:
            old = self._retire_locked()
        if old is not None:
            old.close()

    def _stop_api_locked(self) -> None:
        if self._api_stop is not None:
            self._api_stop()
        self._api, self._api_stop, self._api_status = None, None, ""

    def _retire_locked(self) -> DocChat | None:
        """No engine is current any more; returns the one that was, to be closed."""
        self._stop_api_locked()
        old, self._engine = self._engine, None
        return old
