"""Scale-out, for real: Redis (Debian's `redis-server`) as the job queue, PostgreSQL as
the record store (tests/fixtures/postgres.py), a Chroma server (`chroma run`), two
`python -m rag worker` processes and the app's side as the CLI (`python -m rag ingest
--background`), all on 127.0.0.1 ports of their own.

50 small files go in as 5 jobs; one worker is killed with SIGKILL in the middle of a
job. Its job's lease expires, the other worker takes it and finishes it, and in the
end every document is indexed exactly once, each with all its chunks, none twice.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import DocChat, Settings
from rag.jobs import DONE, Job, JobQueue
from tests.fixtures.chroma_server import ChromaServer
from tests.fixtures.fakes import HashEmbedder
from tests.fixtures.paths import ROOT, free_port, missing

pytestmark = pytest.mark.slow

FILES, JOBS = 50, 5
WORDS = ("river", "granite", "lantern", "orchid", "falcon", "copper", "meadow", "harbor",
         "thistle", "glacier")  # fmt: skip


def document(i: int) -> bytes:
    """A Markdown file of its own: a few sections of sentences unique to file i."""
    parts = [f"# Report {i}\n"]
    for s in range(4):
        words = " ".join(f"{WORDS[(i + s + k) % len(WORDS)]}{i}x{k}" for k in range(60))
        parts.append(f"## Section {s}\n\nFile {i} section {s} notes: {words}.\n")
    return "\n".join(parts).encode()


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        missing("redis-server is not installed (apt-get install redis-server)")
    return str(found)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "redis.log").open("w")
    proc = subprocess.Popen([redis_binary(), "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "redis did not start"
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def test_two_workers_one_killed_mid_job(
    tmp_path: Path,
    redis_url: str,
    server: ChromaServer,  # a real `chroma run` on a free port (tests/fixtures/chroma_server.py)
    pg_url: str,  # a database on a real PostgreSQL server
) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "DOCCHAT_DATA_DIR": str(data), "DOCCHAT_REDIS_URL": redis_url,
           "DOCCHAT_DATABASE_URL": pg_url,
           "DOCCHAT_CHROMA_HOST": "127.0.0.1", "DOCCHAT_CHROMA_PORT": str(server.port),
           "DOCCHAT_JOB_LEASE": "3", "OPENAI_API_KEY": "", "OPENAI_BASE_URL": "",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # fmt: skip
    settings = Settings(data_dir=data, redis_url=redis_url, chroma_host="127.0.0.1",
                        chroma_port=server.port, job_lease=3.0, database_url=pg_url)  # fmt: skip
    queue = JobQueue(settings)  # to watch the jobs (no consumer here)

    # The app's side: 5 uploads of 10 files, each a job.
    src = tmp_path / "files"
    for j in range(JOBS):
        folder = src / f"batch{j}"
        folder.mkdir(parents=True)
        for i in range(j * FILES // JOBS, (j + 1) * FILES // JOBS):
            (folder / f"report{i:02}.md").write_bytes(document(i))
    job_ids = []
    for j in range(JOBS):
        out = subprocess.run([sys.executable, "-m", "rag", "ingest", "--background",
                              "--collection", "reports", str(src / f"batch{j}")],
                             cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=60)  # fmt: skip
        assert out.returncode == 0, out.stderr
        job_ids.append(out.stdout.strip())
    assert len(set(job_ids)) == JOBS

    logs = [(tmp_path / f"worker{n}.log").open("w") for n in range(2)]
    command = [sys.executable, "-m", "rag", "worker"]
    workers = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        for log in logs
    ]
    ids = {w.pid: f"{socket.gethostname()}:{w.pid}" for w in workers}
    try:
        # Kill a worker in the middle of a job: some of its files indexed, some not. At
        # least 5 of 10 left: the record is up to 0.5 s old, and two files are prepared
        # at once, so a job seen with 3 left could be done by the kill.
        victim: tuple[subprocess.Popen[bytes], Job] | None = None
        deadline = time.monotonic() + 90
        while victim is None and time.monotonic() < deadline:
            assert all(w.poll() is None for w in workers), "a worker stopped"
            for job in queue.jobs():
                done = sum(f.status == "indexed" for f in job.files)
                if job.status == "running" and 1 <= done <= len(job.files) - 5:
                    owner = next((w for w in workers if ids[w.pid] == job.worker), None)
                    if owner is not None:
                        victim = (owner, job)
                        break
            time.sleep(0.05)
        assert victim is not None, [(j.status, j.worker, j.summary()) for j in queue.jobs()]
        killed, interrupted = victim
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        survivor = next(w for w in workers if w is not killed)

        deadline = time.monotonic() + 100
        while time.monotonic() < deadline:
            jobs = {j.id: j for j in queue.jobs()}
            if all(jobs[i].finished for i in job_ids):
                break
            assert survivor.poll() is None, "the other worker died too"
            time.sleep(0.2)
        jobs = {j.id: j for j in queue.jobs()}
        assert all(jobs[i].status == DONE for i in job_ids), [jobs[i] for i in job_ids]
        again = jobs[interrupted.id]
        assert again.attempt >= 1 and again.worker == ids[survivor.pid], again
        assert all(f.status in ("indexed", "unchanged") for j in jobs.values() for f in j.files)
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
                w.wait(15)
        for log in logs:
            log.close()

    # Every document once, with every chunk once.
    app = DocChat.open(settings, embedder=HashEmbedder())
    docs = app.documents("reports")
    assert sorted(d.name for d in docs) == [f"report{i:02}.md" for i in range(FILES)]
    store = app.services.store
    assert all(d.status == "ready" for d in store.documents("reports", include_pending=True))
    assert len(app.services.store.documents("reports", include_pending=True)) == FILES
    for d in docs:
        chunks = app.chunks(d.doc_id, collection="reports")
        assert [c.index for c in chunks] == list(range(d.chunks)) and d.chunks > 0, d.name
    assert app.services.store.count_chunks("reports") == sum(d.chunks for d in docs)
    assert store.collection_names() == ["reports"]  # one collection, though both made it
