"""A small OpenAI-compatible HTTP server for tests and manual checks.

It is a real server (stdlib `ThreadingHTTPServer` on 127.0.0.1, in a daemon thread),
so the `openai` client is exercised end to end: HTTP/1.1 keep-alive, chunked
Server-Sent Events, retries, timeouts and broken connections.

Endpoints (see `FakeOpenAIServer.routes`; add more there; a path segment written
`{name}` matches any one segment and reaches the route as `Exchange.params[name]`):

- `POST /v1/chat/completions`, streaming (SSE chunks, a `usage` chunk when
  `stream_options.include_usage` is set, then `data: [DONE]`) and not streaming.
  A request whose system message asks for JSON `"pairs"` of questions and answers
  (or a JSON list of `"questions"`) gets such JSON, made from the passage it was
  given, so generating a fine-tuning set works against this server too.
- `GET /v1/models`.
- `POST /v1/embeddings`: any model; a deterministic unit vector per text (from its
  hash, `embedding_dimension` long), float or base64, listed last text first with
  each one's `index` (a client must order them by `index`).
- `POST /v1/files` (multipart upload), `GET /v1/files/{id}`, `GET /v1/files/{id}/content`.
- `POST /v1/fine_tuning/jobs`, `GET /v1/fine_tuning/jobs` (newest first),
  `GET /v1/fine_tuning/jobs/{id}`, `GET /v1/fine_tuning/jobs/{id}/events`,
  `POST /v1/fine_tuning/jobs/{id}/cancel`. A job moves one stage per retrieve
  (validating_files, queued, running) and ends after `fine_tune_polls` retrieves as
  `fine_tune_outcome`: "succeeded" gives a model id like
  "ft:gpt-4o-mini:docchat:<suffix>:<id>" that chat completions then accept;
  "failed" sets the job's error to `fine_tune_error`. A training file that is not
  chat-format JSONL fails the job on its own, like the real service.

Test knobs, all plain attributes:

- `reply`: None for the deterministic default ("According to the documents [1], "
  plus an echo of the last user message), a string, or `callable(request_json) -> str`.
- `api_key`: the accepted bearer token ("test-key"); None accepts any or none.
- `models`: the known model ids; any other model gets 404 `model_not_found`.
- `fail_next(kind, count=1)`: the next `count` requests fail as `kind`
  (see `FAULTS`); `delay` is the wait of "slow_first_token".
- `requests`: the JSON bodies received, in order (a multipart upload appears as
  its form fields, the file as {"filename", "content": bytes}); `headers`: their headers.
- `files`, `jobs`: what was uploaded / created, by id (plain dicts as served).
- `ignore_stream_options` / `reject_stream_options`: behave like servers that do
  not send usage when streaming / refuse the parameter with a 400.
- `token_delay`: seconds between streamed chunks (nice when watching a UI).

Use the `openai_server` pytest fixture, or run it on its own:

    python tests/fake_openai.py --port 8765          # accepts any key
    OPENAI_BASE_URL=http://127.0.0.1:8765/v1 streamlit run app.py
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import email.policy
import hashlib
import json
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

# What `fail_next` accepts, and what the next request then gets.
FAULTS: dict[str, str] = {
    "rate_limit": "429 rate_limit_exceeded with `retry-after: 1`",
    "server_error": "500 server_error",
    "model_not_found": "404 model_not_found",
    "bad_request": "400 whose message echoes the caller's bearer token (tests redaction)",
    "slow_first_token": "waits `delay` seconds before the first byte, then answers normally",
    "cut_stream": "sends a few chunks (or half the body) and drops the connection, no [DONE]",
    "short_stream": "ends the body cleanly after a few chunks: no finish_reason, no [DONE]",
    "stream_error": "sends a few chunks, then an SSE `error` event (as vLLM/llama.cpp do)",
    "bad_json": "answers 200 with a body that is not JSON",
    "wrong_count": "embeddings: answers with one vector fewer than the texts sent",
}

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "llama3", "fake-model")

Json = dict[str, Any]


@dataclass
class Exchange:
    """One request as a route sees it."""

    method: str
    path: str
    headers: Message
    body: Json | None
    fault: str | None = None  # the fault this request drew, if a route must act on it
    query: str = ""
    params: dict[str, str] = field(default_factory=dict)  # `{name}` segments of the route


# A route answers one request through the handler's `send_*` helpers.
Route = Callable[[Exchange, "_Handler"], None]


@dataclass
class FakeOpenAIServer:
    """An OpenAI-compatible server with fault injection; see the module docstring."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port, read `port` / `base_url` after `start()`
    api_key: str | None = "test-key"
    reply: str | Callable[[Json], str] | None = None
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    delay: float = 3.0
    token_delay: float = 0.0
    ignore_stream_options: bool = False
    reject_stream_options: bool = False
    verbose: bool = False
    requests: list[Json] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    fine_tune_outcome: str = "succeeded"  # or "failed"
    fine_tune_error: str = "Training failed: the loss diverged."
    fine_tune_polls: int = 3  # retrieves of a job before it ends
    files: dict[str, Json] = field(default_factory=dict)
    jobs: dict[str, Json] = field(default_factory=dict)
    embedding_dimension: int = 8

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: deque[str] = deque()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._completion_ids = 0
        self.routes.setdefault(("POST", "/v1/chat/completions"), self._chat_completions)
        self.routes.setdefault(("GET", "/v1/models"), self._list_models)
        self._file_contents: dict[str, bytes] = {}
        self._job_events: dict[str, list[Json]] = {}
        self._job_polls: dict[str, int] = {}
        self._ids = 0
        for key, route in {
            ("POST", "/v1/embeddings"): self._embeddings,
            ("POST", "/v1/files"): self._upload_file,
            ("GET", "/v1/files/{file_id}"): self._get_file,
            ("GET", "/v1/files/{file_id}/content"): self._get_file_content,
            ("POST", "/v1/fine_tuning/jobs"): self._create_job,
            ("GET", "/v1/fine_tuning/jobs"): self._list_jobs,
            ("GET", "/v1/fine_tuning/jobs/{job_id}"): self._get_job,
            ("GET", "/v1/fine_tuning/jobs/{job_id}/events"): self._list_job_events,
            ("POST", "/v1/fine_tuning/jobs/{job_id}/cancel"): self._cancel_job,
        }.items():
            self.routes.setdefault(key, route)

    # ---- lifecycle ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        """Listen and serve in a daemon thread; returns self."""
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self.port), _Handler, fake=self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},  # how long `stop()` may wait for the loop
            name=f"fake-openai-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections (also wakes sleeping handlers)."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.drop_connections()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- test knobs --------------------------------------------------------

    def fail_next(self, kind: str, count: int = 1) -> None:
        """Make the next `count` requests (after authentication) fail as `kind`."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}")
        with self._lock:
            self._faults.extend([kind] * count)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self) -> str | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.headers.append({k.lower(): v for k, v in exchange.headers.items()})
            if exchange.body is not None:
                self.requests.append(exchange.body)

    def wait(self, seconds: float) -> None:
        """Sleep, but return at once when the server stops."""
        self._stopping.wait(seconds)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for a request and its `{name}` parameters (exact paths first)."""
        route = self.routes.get((method, path))
        if route is not None:
            return route, {}
        parts = path.split("/")
        for (m, pattern), route in self.routes.items():
            params = _match_path(pattern, parts)
            if m == method and params is not None:
                return route, params
        return None

    def knows_path(self, path: str) -> bool:
        parts = path.split("/")
        return any(_match_path(pattern, parts) is not None for _, pattern in self.routes)

    def _new_id(self, prefix: str) -> str:
        with self._lock:
            self._ids += 1
            return f"{prefix}-fake{self._ids:04d}"

    # ---- routes ------------------------------------------------------------

    def _list_models(self, ex: Exchange, out: _Handler) -> None:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]
        out.send_json(200, {"object": "list", "data": data}, cut=ex.fault == "cut_stream")

    def _chat_completions(self, ex: Exchange, out: _Handler) -> None:
        body = ex.body or {}
        model = str(body.get("model", ""))
        if model not in self.models:
            out.send_model_not_found(model)
            return
        if not isinstance(body.get("messages"), list):
            out.send_error_json(400, "'messages' is required.", "invalid_request_error", None)
            return
        if self.reject_stream_options and "stream_options" in body:
            message = "Unrecognized request argument supplied: stream_options"
            out.send_error_json(400, message, "invalid_request_error", None)
            return
        text = self.reply(body) if callable(self.reply) else self.reply
        pieces = _pieces(text if text is not None else _default_reply(body))
        finish_reason = "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and 0 < limit < len(pieces):
            pieces, finish_reason = pieces[:limit], "length"
        usage = {
            "prompt_tokens": _count_prompt_tokens(body["messages"]),
            "completion_tokens": len(pieces),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        with self._lock:
            self._completion_ids += 1
            completion_id = f"chatcmpl-fake{self._completion_ids}"
        head = {"id": completion_id, "created": int(time.time()), "model": model}
        if body.get("stream"):
            self._stream_chat(ex, out, head, pieces, finish_reason, usage)
            return
        payload = {
            **head,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(pieces)},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage,
        }
        out.send_json(200, payload, cut=ex.fault == "cut_stream")

    def _stream_chat(
        self,
        ex: Exchange,
        out: _Handler,
        head: Json,
        pieces: list[str],
        finish_reason: str,
        usage: Json,
    ) -> None:
        body = ex.body or {}
        options = body.get("stream_options") or {}
        with_usage = bool(options.get("include_usage")) and not self.ignore_stream_options

        def chunk(delta: Json, finish: str | None = None) -> Json:
            data = {
                **head,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if with_usage:
                data["usage"] = None  # as OpenAI does on every chunk but the last
            return data

        events: list[Json] = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in pieces]
        out.start_sse()
        if ex.fault in ("cut_stream", "short_stream", "stream_error"):
            for event in events[:3]:
                out.send_event(event)
            if ex.fault == "cut_stream":
                out.abort()  # no terminating chunk: the client sees a broken body
                return
            if ex.fault == "stream_error":
                error = {"message": "The model crashed while generating.", "type": "server_error"}
                out.send_event({"error": error})
            out.end_sse()  # a clean end of the body, but no finish_reason and no [DONE]
            return
        for event in events:
            out.send_event(event)
            if self.token_delay:
                self.wait(self.token_delay)
        out.send_event(chunk({}, finish_reason))
        if with_usage:
            out.send_event(
                {**head, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            )
        out.send_event("[DONE]")
        out.end_sse()

    # ---- files -------------------------------------------------------------

    def _embeddings(self, ex: Exchange, out: _Handler) -> None:
        body = ex.body or {}
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts:
            out.send_error_json(400, "'input' is required.", "invalid_request_error", None)
            return
        if ex.fault == "wrong_count":
            texts = texts[:-1]
        data = []
        for i, text in reversed(list(enumerate(texts))):
            seed = int.from_bytes(hashlib.sha256(str(text).encode()).digest()[:8], "little")
            vector = np.random.default_rng(seed).standard_normal(self.embedding_dimension)
            vector = (vector / np.linalg.norm(vector)).astype("<f4")
            embedding: Any = vector.tolist()
            if body.get("encoding_format") == "base64":
                embedding = base64.b64encode(vector.tobytes()).decode()
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        tokens = sum(len(str(t).split()) for t in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        payload = {"object": "list", "data": data, "model": body.get("model"), "usage": usage}
        out.send_json(200, payload)

    def _upload_file(self, ex: Exchange, out: _Handler) -> None:
        body = ex.body or {}
        upload = body.get("file")
        if not isinstance(upload, dict) or not body.get("purpose"):
            out.send_error_json(
                400, "'file' and 'purpose' are required.", "invalid_request_error", None
            )
            return
        content = upload["content"]
        file_id = self._new_id("file")
        info = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": upload["filename"],
            "purpose": body["purpose"],
            "status": "processed",
        }
        with self._lock:
            self.files[file_id] = info
            self._file_contents[file_id] = content
        out.send_json(200, info)

    def _get_file(self, ex: Exchange, out: _Handler) -> None:
        info = self.files.get(ex.params["file_id"])
        if info is None:
            out.send_error_json(404, "No such File object.", "invalid_request_error", None)
            return
        out.send_json(200, info)

    def _get_file_content(self, ex: Exchange, out: _Handler) -> None:
        content = self._file_contents.get(ex.params["file_id"])
        if content is None:
            out.send_error_json(404, "No such File object.", "invalid_request_error", None)
            return
        out.send_bytes(200, content, "application/octet-stream")

    # ---- fine-tuning jobs ----------------------------------------------------

    def _create_job(self, ex: Exchange, out: _Handler) -> None:
        body = ex.body or {}
        model = str(body.get("model", ""))
        if model not in self.models:
            message = f"Model {model} is not available for fine-tuning or does not exist."
            out.send_error_json(400, message, "invalid_request_error", "model_not_available")
            return
        for key in ("training_file", "validation_file"):
            file_id = body.get(key)
            if (key == "training_file" or file_id) and file_id not in self.files:
                message = f"invalid {key}: {file_id}"
                out.send_error_json(400, message, "invalid_request_error", "invalid_file")
                return
        method = body.get("method") or {}
        hyper = dict(body.get("hyperparameters") or {})
        hyper.update((method.get("supervised") or {}).get("hyperparameters") or {})
        job_id = self._new_id("ftjob")
        job: Json = {
            "id": job_id,
            "object": "fine_tuning.job",
            "created_at": int(time.time()),
            "error": None,
            "fine_tuned_model": None,
            "finished_at": None,
            "hyperparameters": {
                "n_epochs": hyper.get("n_epochs", "auto"),
                "batch_size": hyper.get("batch_size", "auto"),
                "learning_rate_multiplier": hyper.get("learning_rate_multiplier", "auto"),
            },
            "model": model,
            "organization_id": "org-fake",
            "result_files": [],
            "seed": int(body.get("seed") or 42),
            "status": "validating_files",
            "trained_tokens": None,
            "training_file": body["training_file"],
            "validation_file": body.get("validation_file"),
            "suffix": body.get("suffix"),
            "metadata": body.get("metadata"),
        }
        with self._lock:
            self.jobs[job_id] = job
            self._job_events[job_id] = []
            self._job_polls[job_id] = 0
        self._job_event(job_id, "info", f"Validating training file: {body['training_file']}")
        out.send_json(200, job)

    def _job_event(self, job_id: str, level: str, message: str) -> None:
        with self._lock:
            events = self._job_events[job_id]
            events.append(
                {
                    "id": f"ftevent-{job_id}-{len(events) + 1}",
                    "object": "fine_tuning.job.event",
                    "created_at": int(time.time()),
                    "level": level,
                    "message": message,
                    "data": {},
                    "type": "message",
                }
            )

    def _advance_job(self, job_id: str) -> None:
        """One retrieve moves a job one stage on, and the last one ends it."""
        job = self.jobs[job_id]
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return
        with self._lock:
            self._job_polls[job_id] += 1
            polls = self._job_polls[job_id]
        if polls < self.fine_tune_polls:
            stage = ("queued", "running")[min(polls, 2) - 1]
            if stage != job["status"]:
                job["status"] = stage
                message = "Job queued." if stage == "queued" else "Fine-tuning job started."
                self._job_event(job_id, "info", message)
            return
        problem = _training_file_problem(self._file_contents[job["training_file"]])
        outcome = "failed" if problem else self.fine_tune_outcome
        job["finished_at"] = int(time.time())
        if outcome == "succeeded":
            suffix = f"{job['suffix']}:" if job.get("suffix") else ""
            model_id = f"ft:{job['model']}:docchat:{suffix}{job_id.rsplit('-', 1)[-1]}"
            job.update(status="succeeded", fine_tuned_model=model_id, trained_tokens=1234)
            if model_id not in self.models:
                self.models.append(model_id)
            self._job_event(job_id, "info", "Step 10/10: training loss=0.12")
            self._job_event(job_id, "info", f"New fine-tuned model created: {model_id}")
            self._job_event(job_id, "info", "The job has successfully completed")
            return
        code = "invalid_training_file" if problem else "training_failed"
        message = problem or self.fine_tune_error
        job.update(status="failed", error={"code": code, "message": message, "param": None})
        self._job_event(job_id, "error", f"Fine-tuning job failed: {message}")

    def _find_job(self, ex: Exchange, out: _Handler) -> Json | None:
        job = self.jobs.get(ex.params["job_id"])
        if job is None:
            message = f"Could not find fine-tune: {ex.params['job_id']}"
            out.send_error_json(404, message, "invalid_request_error", "fine_tune_not_found")
        return job

    def _get_job(self, ex: Exchange, out: _Handler) -> None:
        job = self._find_job(ex, out)
        if job is not None:
            self._advance_job(job["id"])
            out.send_json(200, job)

    def _list_jobs(self, ex: Exchange, out: _Handler) -> None:
        jobs = sorted(self.jobs.values(), key=lambda j: j["id"], reverse=True)
        out.send_json(200, _page(jobs, ex.query))

    def _list_job_events(self, ex: Exchange, out: _Handler) -> None:
        job = self._find_job(ex, out)
        if job is not None:
            events = list(reversed(self._job_events[job["id"]]))  # newest first, as OpenAI
            out.send_json(200, _page(events, ex.query))

    def _cancel_job(self, ex: Exchange, out: _Handler) -> None:
        job = self._find_job(ex, out)
        if job is None:
            return
        if job["status"] in ("succeeded", "failed", "cancelled"):
            message = f"Job {job['id']} has already {job['status']}."
            out.send_error_json(400, message, "invalid_request_error", None)
            return
        job.update(status="cancelled", finished_at=int(time.time()))
        self._job_event(job["id"], "info", "Fine-tuning job cancelled.")
        out.send_json(200, job)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type, *, fake: FakeOpenAIServer) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Close kept-alive connections so their handler threads end now."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout, cut stream) is routine here, not a failure.
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, like real servers
    timeout = 30  # idle keep-alive connections are closed after this
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _HTTPServer

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.fake.verbose:
            super().log_message(format, *args)

    # ---- dispatch ----------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        try:
            body = self._read_body()
        except ValueError:
            self.send_error_json(
                400, "The request body is not valid JSON.", "invalid_request_error", None
            )
            return
        found = fake.match(method, path)
        if found is None:
            status = 405 if fake.knows_path(path) else 404
            message = f"Invalid URL ({method} {url.path})"
            self.send_error_json(status, message, "invalid_request_error", None)
            return
        route, params = found
        exchange = Exchange(method, path, self.headers, body, query=url.query, params=params)
        fake._record(exchange)
        token = self._bearer_token()
        if fake.api_key is not None and token != fake.api_key:
            # Like some compatible servers, echo the key back: a client must never
            # pass this text on to its users verbatim.
            message = f"Incorrect API key provided: {token or '(none)'}."
            self.send_error_json(401, message, "invalid_request_error", "invalid_api_key")
            return
        exchange.fault = fake._take_fault()
        try:
            if self._answer_fault(exchange):
                return
            route(exchange, self)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away; nothing to answer

    def _answer_fault(self, ex: Exchange) -> bool:
        """Answer the request as its fault says; False when the route must still run."""
        fault = ex.fault
        if fault == "slow_first_token":
            self.server.fake.wait(self.server.fake.delay)
            return False
        if fault == "rate_limit":
            message = "Rate limit reached for requests. Please try again in 1s."
            self.send_error_json(
                429, message, "requests", "rate_limit_exceeded", headers={"retry-after": "1"}
            )
            return True
        if fault == "server_error":
            message = "The server had an error while processing your request."
            self.send_error_json(500, message, "server_error", None)
            return True
        if fault == "model_not_found":
            self.send_model_not_found(str((ex.body or {}).get("model", "")))
            return True
        if fault == "bad_json":
            self.send_bytes(200, b"<html>502 Bad Gateway</html>", "application/json")
            return True
        if fault == "bad_request":
            message = f"Invalid request from Authorization: Bearer {self._bearer_token()}"
            self.send_error_json(400, message, "invalid_request_error", None)
            return True
        return False

    def _read_body(self) -> Json | None:
        """The JSON body, or a multipart form as {field: text, file: {filename, content}}."""
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0:
            return None
        raw = self.rfile.read(length)
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            return _parse_multipart(content_type, raw)
        data = json.loads(raw or b"null")
        if data is not None and not isinstance(data, dict):
            raise ValueError("not an object")
        return data

    def _bearer_token(self) -> str:
        header = self.headers.get("Authorization", "")
        return header[7:].strip() if header.lower().startswith("bearer ") else ""

    # ---- response helpers (for routes) -------------------------------------

    def send_json(
        self, status: int, payload: Any, *, headers: dict[str, str] | None = None, cut: bool = False
    ) -> None:
        """Send a JSON body; `cut` sends half of it and drops the connection."""
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if cut:
            self.wfile.write(data[: len(data) // 2])
            self.abort()
            return
        self.wfile.write(data)

    def send_bytes(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_error_json(
        self,
        status: int,
        message: str,
        type_: str,
        code: str | None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        """An OpenAI-style error body."""
        error = {"message": message, "type": type_, "param": None, "code": code}
        self.send_json(status, {"error": error}, headers=headers)

    def send_model_not_found(self, model: str) -> None:
        message = f"The model `{model}` does not exist or you do not have access to it."
        self.send_error_json(404, message, "invalid_request_error", "model_not_found")

    def start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def send_event(self, data: Json | str) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        payload = f"data: {text}\n\n".encode()
        self.wfile.write(b"%X\r\n%s\r\n" % (len(payload), payload))
        self.wfile.flush()

    def end_sse(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def abort(self) -> None:
        """Drop the connection without finishing the body."""
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _last_user_text(body: Json) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts: keep the text ones
                content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def _match_path(pattern: str, parts: list[str]) -> dict[str, str] | None:
    """`{name}` segments of `pattern` that match `parts`, or None when it does not match."""
    pattern_parts = pattern.split("/")
    if len(pattern_parts) != len(parts):
        return None
    params: dict[str, str] = {}
    for want, got in zip(pattern_parts, parts, strict=True):
        if want.startswith("{") and want.endswith("}"):
            if not got:
                return None
            params[want[1:-1]] = got
        elif want != got:
            return None
    return params


def _parse_multipart(content_type: str, raw: bytes) -> Json:
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    form: Json = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        content = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            form[str(name)] = {"filename": filename, "content": content}
        else:
            form[str(name)] = content.decode()
    return form


def _page(items: list[Json], query: str) -> Json:
    """A cursor page: `after` (an id) and `limit` from the query string."""
    args = parse_qs(query)
    after = args.get("after", [None])[0]
    if after is not None:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    limit = int(args.get("limit", ["20"])[0])
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit}


def _training_file_problem(content: bytes) -> str:
    """Why a fine-tuning file is not chat-format JSONL ("" when it is)."""
    lines = [line for line in content.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines:
        return "The training file is empty."
    for n, line in enumerate(lines, start=1):
        try:
            example = json.loads(line)
        except ValueError:
            return f"Line {n} of the training file is not valid JSON."
        messages = example.get("messages") if isinstance(example, dict) else None
        if not isinstance(messages, list) or not messages:
            return f"Line {n} of the training file has no 'messages'."
        roles = [m.get("role") for m in messages if isinstance(m, dict)]
        if "assistant" not in roles or any(r not in ("system", "user", "assistant") for r in roles):
            return f"Line {n} of the training file has invalid roles."
    return ""


def _system_text(body: Json) -> str:
    return " ".join(
        str(m.get("content", ""))
        for m in body.get("messages") or []
        if isinstance(m, dict) and m.get("role") == "system"
    )


def _sentences(text: str) -> list[str]:
    found = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s.split()) >= 3]
    return found or [" ".join(text.split()) or "nothing"]


def _dataset_reply(body: Json) -> str | None:
    """JSON questions and answers for a request that asks for them (else None).

    Made from the passage in the last user message, one sentence per pair, so each
    answer really is in its chunk; off-field questions for a list of "questions".
    """
    system = _system_text(body)
    wanted = re.search(r"exactly (\d+)", system)
    n = int(wanted.group(1)) if wanted else 3
    if '"pairs"' in system and '"question"' in system:
        passage = _last_user_text(body).split("\n\n", 1)[-1]
        sentences = _sentences(passage)
        pairs = []
        for i in range(n):
            sentence = sentences[i % len(sentences)]
            topic = " ".join(sentence.split()[:6]).rstrip(".,;:")
            question = f"What do the documents say about {topic}?" + (
                "" if i < len(sentences) else f" ({i + 1})"
            )
            pairs.append({"question": question, "answer": sentence})
        return json.dumps({"pairs": pairs})
    if '"questions"' in system:
        topics = [
            "the best pizza in Naples",
            "tomorrow's weather",
            "the 1998 World Cup final",
            "how to bake sourdough",
            "the price of bitcoin",
            "learning the violin",
        ]
        questions = [f"What do you know about {topics[i % len(topics)]}?" for i in range(n)]
        return json.dumps({"questions": questions})
    return None


def _default_reply(body: Json) -> str:
    """Deterministic: cites [1] and echoes the question (the prompt's last line)."""
    dataset = _dataset_reply(body)
    if dataset is not None:
        return dataset
    lines = [line.strip() for line in _last_user_text(body).splitlines() if line.strip()]
    words = (lines[-1] if lines else "nothing").split()
    echo = " ".join(words[:12]) + (" …" if len(words) > 12 else "")
    return f"According to the documents [1], you asked: {echo}"


def _pieces(text: str) -> list[str]:
    """Split into word-sized deltas ("According ", "to ", ...) that join back exactly."""
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


def _count_prompt_tokens(messages: list[Any]) -> int:
    """A stand-in for a tokenizer: words plus a few tokens of overhead per message."""
    total = 0
    for message in messages:
        content = message.get("content", "") if isinstance(message, dict) else ""
        total += 4 + len(str(content).split())
    return total


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    """A started `FakeOpenAIServer` (key "test-key"), stopped after the test."""
    server = FakeOpenAIServer().start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake OpenAI-compatible API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default=None, help="require this key (default: any)")
    parser.add_argument("--token-delay", type=float, default=0.03, help="seconds per chunk")
    parser.add_argument("--models", default="", help="extra model ids, comma-separated")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        token_delay=args.token_delay,
        verbose=not args.quiet,
    )
    server.models += [m.strip() for m in args.models.split(",") if m.strip()]
    server.start()
    print(f"Fake OpenAI API at {server.base_url} (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
