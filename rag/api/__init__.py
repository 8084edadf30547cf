"""DocChat as a service: the HTTP API (`app.create_app`) in OpenAI's shapes (`shapes`)."""

from __future__ import annotations

from collections.abc import Callable

from rag.api.app import create_app
from rag.core.errors import RagError
from rag.engine import DocChat

__all__ = ["create_app", "serve_in_thread"]


def serve_in_thread(engine: DocChat, host: str, port: int) -> Callable[[], None]:
    """Serve the API for `engine` on host:port from a daemon thread (the app runs it
    beside the pages, sharing its engine: the embedded store has one process); the
    port is bound before this returns (`RagError` when it is taken). Returns stop()."""
    import socket
    import threading

    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise RagError(f"The API could not listen on {host}:{port} ({e.strerror}).") from None
    # Listening before the server's thread starts: a request right after this returns
    # waits in the backlog instead of being refused (uvicorn listens again, harmlessly).
    sock.listen(2048)
    config = uvicorn.Config(create_app(engine, host=host), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="docchat-api")  # fmt: skip
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(10)
        sock.close()

    return stop
