"""Kill `python -m rag ingest` with SIGKILL at random points and check nothing is lost.

Each round starts the real CLI (real packaged model, embedded Chroma) on a folder of
documents and kills it at a random moment of one of three kinds: while it starts
(imports, opening the store and its crash recovery, loading the model), while it
ingests (within `--span` seconds after its first result line), or while it writes a
document (just after the index files change: pending record, chunks, ready). Then a
fresh process opens the data dir (running the store's crash recovery) and checks:

- every document the CLI reported (`indexed` / `unchanged`) is there and ready;
- the only other document that may be there is the one in flight at the kill;
- each ready document is complete: its chunk count matches its record, chunk ids are
  `<doc_id>:0 .. n-1` without gaps, its original file is stored;
- no pending record and no orphan chunk (a chunk whose document is not ready) is left;
- the vector index answers a query over the whole collection;
- no extraction worker of the killed CLI is left running (they exit within seconds).

The check then deletes a random half of the documents, so the next round has work
to do (and re-adds the file that was interrupted). A last uninterrupted run must end
with every file indexed exactly once.

    .venv/bin/python benchmarks/kill_loop.py --kills 20 --json benchmarks/results/kill_loop.json

`tests/integration/test_crash_safety.py` runs a small version (4 kills).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
LINE = re.compile(r"^(indexed|unchanged|rejected)\s+(.+?): ")


def make_corpus(dest: Path, *, texts: int, pdfs: tuple[str, ...] = ()) -> list[str]:
    """COVID-QA articles as .txt files (smallest first) plus sample PDFs; sorted names."""
    dest.mkdir(parents=True, exist_ok=True)
    data = json.loads((SHARED / "covid-qa" / "covidQA.json").read_text(encoding="utf-8"))
    contexts = sorted((a["paragraphs"][0]["context"] for a in data["data"]), key=len)
    # Skip the tiniest: a kill should land inside a file, not between two instant ones.
    for i, text in enumerate(contexts[10 : 10 + texts]):
        (dest / f"article-{i:02d}.txt").write_text(text, encoding="utf-8")
    for name in pdfs:
        shutil.copy(SHARED / "pdfs" / "sample-files" / name, dest / name)
    return sorted(p.name for p in dest.iterdir())


# --- the check, run in its own process (the data dir allows one process at a time) ---


def check(data_dir: Path, delete_fraction: float, seed: int) -> dict[str, Any]:
    """Open the store (running recovery), verify it, delete a random part; a dict."""
    from rag import Settings, Store

    class RecordingStore(Store):
        def recover(self) -> list[str]:
            self.recovered = super().recover()
            return self.recovered

    store = RecordingStore(Settings(data_dir=data_dir))
    problems: list[str] = []
    ready: dict[str, dict[str, Any]] = {}
    chunks_checked = 0
    for info in store.list_collections():
        col, _ = store._pair(info.name)
        records = store.documents(info.name, include_pending=True)
        for d in records:
            if d.status != "ready":
                problems.append(f"{d.name}: left {d.status} after recovery")
        got = col.get(include=["metadatas"])
        by_doc: dict[str, list[tuple[str, int]]] = {}
        for cid, meta in zip(got["ids"], got["metadatas"], strict=True):
            by_doc.setdefault(str(meta["doc_id"]), []).append((cid, int(meta["index"])))
        record_ids = {d.doc_id for d in records if d.status == "ready"}
        for doc_id in set(by_doc) - record_ids:
            problems.append(f"{len(by_doc[doc_id])} orphan chunks of {doc_id[:12]}")
        names: dict[str, int] = {}
        for d in records:
            names[d.name] = names.get(d.name, 0) + 1
            have = sorted(by_doc.get(d.doc_id, []), key=lambda x: x[1])
            want = [(f"{d.doc_id}:{i}", i) for i in range(d.chunks)]
            if have != want:
                problems.append(f"{d.name}: {len(have)} chunks stored, record says {d.chunks}")
            try:
                store.original(d.doc_id)
            except Exception as e:
                problems.append(f"{d.name}: original missing ({e})")
            chunks_checked += len(have)
            ready[d.name] = {"doc_id": d.doc_id, "chunks": d.chunks}
        problems += [f"{n}: {k} versions" for n, k in names.items() if k > 1]
        total = col.count()
        if total != len(got["ids"]):
            problems.append(f"count() says {total}, get() returns {len(got['ids'])}")
        if total:
            probe = col.get(limit=1, include=["embeddings"])["embeddings"][0]
            hits = col.query(query_embeddings=[probe], n_results=min(total, 50))
            if not hits["ids"][0] or not set(hits["ids"][0]) <= set(got["ids"]):
                problems.append("vector index out of step with the stored chunks")
    deleted: list[str] = []
    rng = random.Random(seed)
    for name in sorted(ready):
        if rng.random() < delete_fraction:
            store.delete_document("default", ready[name]["doc_id"])
            deleted.append(name)
    return {
        "ready": sorted(ready),
        "recovered": store.recovered,
        "problems": problems,
        "chunks_checked": chunks_checked,
        "deleted": deleted,
    }


# --- the driver -----------------------------------------------------------------------


@dataclass
class Report:
    kills: int = 0
    kills_by_mode: dict[str, int] = field(default_factory=dict)  # see ingest_once
    rounds: int = 0
    finished_before_kill: int = 0
    killed_mid_write: int = 0  # recovery found a pending document: killed while storing
    in_flight_completed: int = 0  # the file in flight had become ready before the kill
    documents_checked: int = 0
    chunks_checked: int = 0
    problems: list[str] = field(default_factory=list)
    kill_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DOCCHAT_DATA_DIR=str(data_dir),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        ANONYMIZED_TELEMETRY="False",
    )
    env.pop("DOCCHAT_CHROMA_HOST", None)
    return env


def orphan_workers(data_dir: Path, wait: float = 5.0) -> list[int]:
    """Extraction workers of a killed CLI still alive after `wait` s (they should exit)."""
    mark = f"DOCCHAT_DATA_DIR={data_dir}".encode()
    deadline = time.monotonic() + wait
    while True:
        found = []
        for proc in Path("/proc").iterdir():
            try:
                worker = b"_serve_fd" in (proc / "cmdline").read_bytes()
                if worker and mark in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
            except OSError:
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def run_check(data_dir: Path, delete_fraction: float, seed: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--check", str(data_dir), str(delete_fraction), str(seed)],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(data_dir),
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"check failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _index_mtime(data_dir: Path) -> int:
    """The newest modification time of the embedded index's files (ns; 0 if none yet)."""
    latest = 0
    for path in (data_dir / "chroma").rglob("*"):
        try:
            latest = max(latest, path.stat().st_mtime_ns)
        except OSError:
            continue
    return latest


def ingest_once(
    data_dir: Path, corpus: Path, mode: str | None, kill_after: float = 0.0
) -> tuple[list[tuple[str, str]], bool, float, float]:
    """Run the CLI and SIGKILL it `kill_after` s after a point that depends on `mode`:

    - "starting": its start (imports, opening the store and recovery, model load);
    - "ingesting": its first result line;
    - "writing": the first change to the index files after its first result line,
      i.e. while a document is being written (pending record, chunks, ready);
    - None: no kill.

    Returns (result lines, killed, seconds it ran, seconds to the first line).
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag", "ingest", str(corpus)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env(data_dir),
        cwd=ROOT,
    )
    assert proc.stdout is not None
    lines: list[tuple[str, str]] = []
    first = threading.Event()
    started = time.monotonic()
    first_at = [0.0]

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            m = LINE.match(raw)
            if m:
                lines.append((m.group(1), m.group(2)))
                if not first.is_set():
                    first_at[0] = time.monotonic() - started
                first.set()
        first.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    killed = False
    if mode is not None:
        if mode != "starting":
            first.wait(timeout=600)
        if mode == "writing":
            before = _index_mtime(data_dir)
            deadline = time.monotonic() + 600
            while proc.poll() is None and time.monotonic() < deadline:
                if _index_mtime(data_dir) != before:
                    break
                time.sleep(0.005)
        time.sleep(kill_after)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed = True
    proc.wait(timeout=900)
    reader.join(timeout=10)
    return list(lines), killed, time.monotonic() - started, first_at[0]


MODES = ("starting", "ingesting", "writing")


def kill_loop(
    work: Path,
    corpus: Path,
    *,
    kills: int,
    span: float,
    seed: int,
    modes: Sequence[str] = (),
    log: Any = print,
) -> Report:
    """Kill `kills` ingest runs at random points; the Report lists any problem found.

    `modes` (cycled) says where each round kills (see `ingest_once`); by default each
    round picks one at random.
    """
    rng = random.Random(seed)
    data_dir = work / "data"
    names = sorted(p.name for p in corpus.iterdir())
    report = Report()
    t0 = time.monotonic()
    ready: set[str] = set()  # what the last check found, minus what it deleted
    first_line = 0.0  # seconds from start to the first result line, once seen
    while report.kills < kills and report.rounds < kills * 3:
        mode = modes[report.rounds % len(modes)] if modes else rng.choice(MODES)
        report.rounds += 1
        if mode == "starting" and not first_line:
            mode = "ingesting"  # how long starting takes is known after one round
        if mode == "starting":
            delay = rng.uniform(0.25 * first_line, first_line)
        elif mode == "ingesting":
            delay = rng.uniform(0.0, span)
        else:
            delay = rng.uniform(0.0, 0.03)  # storing a small document takes tens of ms
        lines, killed, seconds, at = ingest_once(data_dir, corpus, mode, delay)
        first_line = first_line or at
        reported = {name for status, name in lines if status in ("indexed", "unchanged")}
        done = {name for _, name in lines}
        in_flight = next((n for n in names if n not in done), None) if killed else None
        orphans = orphan_workers(data_dir) if killed else []
        got = run_check(data_dir, 0.5, rng.randrange(1 << 30))
        now_ready = set(got["ready"])
        expected = ready | reported
        problems = list(got["problems"])
        if orphans:
            problems.append(f"extraction workers outlived the killed CLI: {orphans}")
        if missing := expected - now_ready:
            problems.append(f"reported ready but gone: {sorted(missing)}")
        extra = now_ready - expected - ({in_flight} if in_flight else set())
        if extra:
            problems.append(f"present but never reported: {sorted(extra)}")
        if killed:
            report.kills += 1
            report.kills_by_mode[mode] = report.kills_by_mode.get(mode, 0) + 1
            report.kill_seconds.append(round(seconds, 2))
            report.killed_mid_write += bool(got["recovered"])
            report.in_flight_completed += in_flight in now_ready
        else:
            report.finished_before_kill += 1
            if set(names) - now_ready:
                problems.append(f"finished but missing: {sorted(set(names) - now_ready)}")
        report.documents_checked += len(now_ready)
        report.chunks_checked += got["chunks_checked"]
        report.problems += [f"round {report.rounds}: {p}" for p in problems]
        ready = now_ready - set(got["deleted"])
        stage = f"killed {mode}" if killed else "finished"
        log(
            f"round {report.rounds:2}: {stage:16} after {seconds:5.1f}s"
            f" | {len(lines)} result line(s), in flight {in_flight or '-'}"
            f" | recovered {got['recovered'] or '-'} | {len(now_ready)} ready,"
            f" {got['chunks_checked']} chunks checked | problems: {problems or 'none'}"
        )
    # The end: one run without a kill re-adds everything, each file exactly once.
    lines, _, seconds, _ = ingest_once(data_dir, corpus, None)
    statuses = {name: status for status, name in lines}
    got = run_check(data_dir, 0.0, 0)
    final = list(got["problems"])
    if sorted(got["ready"]) != names:
        final.append(f"final run: ready {got['ready']} != corpus {names}")
    if any(s == "rejected" for s in statuses.values()):
        final.append(f"final run rejected files: {statuses}")
    report.problems += [f"final: {p}" for p in final]
    report.documents_checked += len(got["ready"])
    report.chunks_checked += got["chunks_checked"]
    report.seconds = time.monotonic() - t0
    log(f"final run: {len(lines)} files in {seconds:.1f}s, problems: {final or 'none'}")
    return report


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--check":
        print(json.dumps(check(Path(args[1]), float(args[2]), int(args[3]))))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--texts", type=int, default=10, help="COVID-QA articles in the corpus")
    p.add_argument("--span", type=float, default=20.0, help="kill within this many s of line 1")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(args)
    with tempfile.TemporaryDirectory(prefix="docchat-kill-") as tmp:
        corpus = Path(tmp) / "corpus"
        make_corpus(corpus, texts=a.texts, pdfs=("tracemonkey.pdf", "pdflatex-outline.pdf"))
        report = kill_loop(Path(tmp), corpus, kills=a.kills, span=a.span, seed=a.seed)
    figures = {
        "kills": report.kills,
        "kills_by_mode": report.kills_by_mode,
        "rounds": report.rounds,
        "finished_before_kill": report.finished_before_kill,
        "killed_mid_write": report.killed_mid_write,
        "in_flight_completed": report.in_flight_completed,
        "documents_checked": report.documents_checked,
        "chunks_checked": report.chunks_checked,
        "problems": report.problems,
        "lost_or_broken_documents": len(report.problems),
        "seconds": round(report.seconds, 1),
    }
    print(json.dumps({k: v for k, v in figures.items() if k != "problems"}))
    print(f"kills survived: {report.kills}, problems: {len(report.problems)}")
    for problem in report.problems:
        print("  " + problem)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
