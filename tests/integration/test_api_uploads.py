"""API uploads read as they stream in: a file over `DOCCHAT_MAX_FILE_MB`, a body over
`DOCCHAT_MAX_REQUEST_MB` and more files than `DOCCHAT_MAX_REQUEST_FILES` are refused
(413, OpenAI's shape) before the rest of the body is read, nothing is queued, and the
temporary files are gone. Against `python -m rag serve` in its own process: a 300 MB
body is refused after a small part of it was sent, and the server's memory does not
grow with it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag import Settings
from tests.fixtures.api import finished
from tests.fixtures.paths import ROOT, free_port
from tests.fixtures.serving import Served, engine_served, error_of, wait_serving

MB = 1_000_000
DOCS = "/v1/collections/default/documents"


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Served]:
    """Limits of 1 MB a file, 3 MB a request, 3 files a request."""
    settings = Settings(data_dir=tmp_path, min_score=0.0, rate_limit="off", workers=0,
                        max_file_mb=1.0, max_request_mb=3.0, max_request_files=3)  # fmt: skip
    with engine_served(settings) as served:
        yield served


def text(size: int, word: bytes = b"cats ") -> bytes:
    return (word * (size // len(word) + 1))[:size]


def nothing_left(served: Served) -> None:
    """No job was queued, and no temporary upload is left in the data dir."""
    with served.client() as h:
        assert [j for j in h.get("/v1/jobs").json()["data"] if j["collection"] == "default"] == []
    assert not list(Path(served.engine.settings.data_dir).glob(".upload-*"))


def test_each_limit_refuses_the_upload_and_queues_nothing(small: Served) -> None:
    with small.client() as h:
        over = h.post(DOCS, files=[("files", ("ok.txt", text(1000))),
                                   ("files", ("big.txt", text(MB + 1)))])  # fmt: skip
        assert over.status_code == 413
        message = error_of(over)["message"]
        assert "big.txt" in message and "DOCCHAT_MAX_FILE_MB" in message
        nothing_left(small)

        many = h.post(DOCS, files=[("files", (f"f{i}.txt", text(100))) for i in range(4)])
        assert many.status_code == 413
        assert "DOCCHAT_MAX_REQUEST_FILES" in error_of(many)["message"]
        nothing_left(small)

        # Three files, each under 1 MB, 3.6 MB together.
        files = [("files", (f"g{i}.txt", text(1_200_000 - 1))) for i in range(3)]
        total = h.post(DOCS, files=files)
        assert total.status_code == 413
        assert "DOCCHAT_MAX_REQUEST_MB" in error_of(total)["message"]
        nothing_left(small)

        not_multipart = h.post(DOCS, json={"files": ["a"]})
        assert not_multipart.status_code == 400
        assert "multipart" in error_of(not_multipart)["message"]
        no_files = h.post(DOCS, files=[("other", ("a.txt", b"cats"))])
        assert no_files.status_code == 400 and "files" in error_of(no_files)["message"]
        nothing_left(small)

        # Within every limit: the files are queued with their names and bytes.
        ok = h.post(DOCS, files=[("files", ("../../notes.md", b"# Notes\n\nCats nap.\n")),
                                 ("files", ("dogs.txt", text(MB, b"dogs ")))])  # fmt: skip
        assert ok.status_code == 202, ok.text
        job = finished(h, ok.json())
        assert [f["name"] for f in job["files"]] == ["notes.md", "dogs.txt"]
        assert {f["status"] for f in job["files"]} == {"indexed"}
    assert not list(Path(small.engine.settings.data_dir).glob(".upload-*"))


def _status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def test_a_content_length_over_the_limit_is_refused_before_any_body(small: Served) -> None:
    """The headers alone: the answer comes before a byte of the body is sent."""
    host, port = small.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            b"POST " + DOCS.encode() + b" HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 300000000\r\n\r\n"
        )
        reply = s.recv(65536)
    assert _status_of(reply) == 413 and b"DOCCHAT_MAX_REQUEST_MB" in reply


# -- a real server process ----------------------------------------------------------------------


def _rss_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) MB of a process."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value
    return int(fields["VmRSS"].split()[0]) / 1000, int(fields["VmHWM"].split()[0]) / 1000


@pytest.fixture
def served_process(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """`python -m rag serve` with the default request limit (200 MB) and 1 MB a file."""
    port = free_port()
    env = {**os.environ, "DOCCHAT_DATA_DIR": str(tmp_path), "OPENAI_API_KEY": "",
           "OPENAI_BASE_URL": "", "DOCCHAT_MAX_FILE_MB": "1",
           "DOCCHAT_RATE_LIMIT": "off"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_serving(proc, f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_a_300mb_upload_is_refused_early_and_the_server_does_not_hold_it(
    served_process: tuple[str, int],
) -> None:
    """A chunked body (no Content-Length) whose one file grows to 300 MB: 413 once the
    file passes 1 MB; the client had sent a small part of the body by then (what the
    sockets' buffers took), and the server's peak memory grew by far less than it."""
    url, pid = served_process
    sent = 0
    chunk = text(64 * 1024)

    def body() -> Iterator[bytes]:
        nonlocal sent
        head = (b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.txt\"\r\n"
                b"Content-Type: text/plain\r\n\r\n")  # fmt: skip
        sent += len(head)
        yield head
        while sent < 300 * MB:
            sent += len(chunk)
            yield chunk
        yield b"\r\n--b--\r\n"

    rss, peak = _rss_mb(pid)
    t0 = time.perf_counter()
    r = httpx.post(f"{url}{DOCS}", content=body(), timeout=60,
                   headers={"Content-Type": "multipart/form-data; boundary=b"})  # fmt: skip
    seconds = time.perf_counter() - t0
    assert r.status_code == 413, r.text
    assert "DOCCHAT_MAX_FILE_MB" in error_of(r)["message"]
    after, after_peak = _rss_mb(pid)
    print(
        f"sent {sent / MB:.1f} MB of 300 in {seconds:.2f} s; server RSS {rss:.0f} -> "
        f"{after:.0f} MB, peak {peak:.0f} -> {after_peak:.0f} MB"
    )
    assert sent < 50 * MB, f"{sent / MB:.0f} MB sent before the refusal"
    assert after_peak - peak < 30, "the server's memory grew with the body"
