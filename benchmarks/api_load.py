"""A load check of the HTTP API with sign-in on: concurrent clients with API keys.

    .venv/bin/python benchmarks/api_load.py [--database sqlite|postgresql] [--json OUT]
        [--clients 32] [--seconds 60] [--chunks 10000] [--users 8]
        [--auth-clients 8] [--auth-seconds 20]

One server process (the API as `rag serve` runs it, `DOCCHAT_AUTH=accounts`, extractive
mode: no LLM) over one collection of `--chunks` chunks: real COVID-QA sentences
recombined into ~800-character chunks (as `benchmarks/query.py` makes them), embedded
by the real default model. That data dir is built once (a few minutes) and kept under
`/tmp/docchat-bench-api/`; each run copies it. `--users` accounts, one API key each,
read the collection (shared with everyone as readers). The record store is SQLite in
the data dir, or a PostgreSQL server started for the run (Debian's binaries, as the
tests start it).

Three phases, each from its own load process (asyncio + httpx, one connection per
client, each sending its next request as soon as the last is answered):
1. `--clients` clients for `--seconds`, each request drawn from a mix: chat
   completions (not streamed, a COVID-QA question), search, and the lists of models,
   collections and jobs;
2. key checks: `--auth-clients` clients sending GET /v1/models (the cheapest call
   that checks a key) for `--auth-seconds`;
3. sign-ins: `--auth-clients` threads signing in through the record store
   (`Accounts.sign_in`: the password hash check, the throttling counters, a new
   session) for `--auth-seconds`.
Reported for each: requests, p50/p95/max latency, errors (any status but 200, or a
body without its content). The rate limit is off (`rate_limit` "off"), so that the
load measures serving, not refusing. Targets (issue 29): 0 errors, p95 under 1 s.

Left out: streaming clients, an LLM behind the API (its latency is the LLM's),
uploads (the ingestion benchmark's subject).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import random
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(tempfile.gettempdir()) / "docchat-bench-api"
COLLECTION = "bench"
PASSWORD = "bench-password-1"
MIX = (("chat", 35), ("search", 35), ("models", 10), ("collections", 10), ("jobs", 10))


def _stats(latencies: list[float], errors: list[str], elapsed: float) -> dict[str, Any]:
    ordered = sorted(latencies) or [0.0]

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000, 1)

    return {"requests": len(latencies), "requests_per_s": round(len(latencies) / elapsed, 1),
            "latency_ms_p50": pct(50), "latency_ms_p95": pct(95),
            "latency_ms_max": round(ordered[-1] * 1000, 1), "errors": len(errors),
            "error_samples": errors[:5], "seconds": round(elapsed, 1)}  # fmt: skip


# -- the load process --------------------------------------------------------------------


def _http_load(url: str, keys: list[str], clients: int, seconds: float, kinds: list[str],
               questions: list[str]) -> dict[str, Any]:  # fmt: skip
    """`clients` loops for `seconds`, each request of a kind drawn from `kinds`."""
    import httpx

    model = f"docchat/{COLLECTION}"
    by_kind: dict[str, list[float]] = {}
    errors: list[str] = []

    def request(kind: str, q: str) -> tuple[str, str, dict[str, Any] | None]:
        if kind == "chat":
            body = {"model": model, "messages": [{"role": "user", "content": q}]}
            return "POST", "/v1/chat/completions", body
        if kind == "search":
            return "POST", f"/v1/collections/{COLLECTION}/search", {"query": q, "top_k": 5}
        return "GET", f"/v1/{kind}", None

    def answered(kind: str, r: httpx.Response) -> bool:
        if r.status_code != 200:
            return False
        got = r.json()
        if kind == "chat":
            return bool(got["choices"][0]["message"]["content"])
        if kind in ("search", "models", "collections"):
            return bool(got["data"])
        return "data" in got

    async def one(i: int, client: httpx.AsyncClient, stop: float) -> None:
        rng = random.Random(i)
        headers = {"Authorization": f"Bearer {keys[i % len(keys)]}"}
        while time.monotonic() < stop:
            kind = rng.choice(kinds)
            method, path, body = request(kind, rng.choice(questions))
            t = time.perf_counter()
            try:
                r = await client.request(method, url + path, json=body, headers=headers)
                if not answered(kind, r):
                    errors.append(f"{kind} {r.status_code}: {r.text[:200]}")
            except (httpx.HTTPError, KeyError, IndexError, ValueError) as e:
                errors.append(f"{kind} {type(e).__name__}")
            by_kind.setdefault(kind, []).append(time.perf_counter() - t)

    async def run() -> float:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            t0 = time.monotonic()
            await asyncio.gather(*(one(i, client, t0 + seconds) for i in range(clients)))
            return time.monotonic() - t0

    elapsed = asyncio.run(run())
    result = _stats([t for v in by_kind.values() for t in v], errors, elapsed)
    if len(by_kind) > 1:
        result["by_kind"] = {
            k: {n: s[n] for n in ("requests", "latency_ms_p50", "latency_ms_p95")}
            for k, v in sorted(by_kind.items())
            for s in [_stats(v, [], elapsed)]
        }
    return result


def _sign_ins(names: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """`clients` threads signing in (as the app's sign-in page does) for `seconds`."""
    from rag.core.settings import Settings
    from rag.team.signin import open_accounts

    accounts = open_accounts(Settings.from_env())
    latencies: list[float] = []
    errors: list[str] = []
    stop = time.monotonic() + seconds

    def one(i: int) -> None:
        while time.monotonic() < stop:
            t = time.perf_counter()
            try:
                accounts.sign_in(names[i % len(names)], PASSWORD, f"10.0.0.{i}")
            except Exception as e:  # a failed sign-in is the figure's error count
                errors.append(f"{type(e).__name__}: {e}"[:200])
            latencies.append(time.perf_counter() - t)

    t0 = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _stats(latencies, errors, time.monotonic() - t0)


def _load_main(spec: dict[str, Any]) -> int:
    if spec["phase"] == "signin":
        result = _sign_ins(spec["users"], spec["clients"], spec["seconds"])
    else:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from query import QUERIES, corpus

        questions = random.Random(0).sample(corpus()[1], QUERIES)
        kinds = [k for k, weight in MIX for _ in range(weight)] if spec["phase"] == "mix" else [
            "models"]  # fmt: skip
        result = _http_load(spec["url"], spec["keys"], spec["clients"], spec["seconds"], kinds,
                            questions)  # fmt: skip
    print(json.dumps(result))
    return 0


# -- the server process ------------------------------------------------------------------


def _serve_main(port: int) -> int:
    """`rag serve`'s API on 127.0.0.1:`port`, from the environment, rate limit off."""
    import uvicorn

    from rag import DocChat, Settings
    from rag.api import create_app

    settings = Settings.from_env().without_llm().with_(rate_limit="off")
    engine = DocChat.open(settings)
    engine.start_workers()
    uvicorn.run(create_app(engine, host="127.0.0.1"), host="127.0.0.1", port=port,
                log_level="warning")  # fmt: skip
    engine.close()
    return 0


# -- the data dir, built once --------------------------------------------------------------


def build_data(chunks: int) -> tuple[Path, float]:
    """A data dir with `chunks` chunks embedded by the default model (kept in `CACHE`),
    and the seconds its build took (0 when it was there already)."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from query import DOC_CHUNKS, corpus, synthetic_chunks

    from rag import Chunk, DocChat, DocumentInfo, Settings

    target = CACHE / f"{chunks}-chunks"
    if (target / "READY").is_file():
        return target, 0.0
    shutil.rmtree(target, ignore_errors=True)
    t0 = time.perf_counter()
    settings = (
        Settings.from_env()
        .without_llm()
        .with_(data_dir=target, chroma_host="", collection=COLLECTION, database_url="")
    )
    app = DocChat.open(settings)
    info = app.ensure_collection()
    sentences = corpus()[0]
    for first in range(0, chunks, DOC_CHUNKS):
        texts = synthetic_chunks(sentences, min(DOC_CHUNKS, chunks - first), first)
        doc_id = f"{first // DOC_CHUNKS + 1:064x}"
        name, pos, part = f"covid-{first // DOC_CHUNKS + 1:03d}.txt", 0, []
        for i, t in enumerate(texts):
            part.append(Chunk(doc_id, name, i, t, start=pos, end=pos + len(t),
                              tokens=len(t) // 4))  # fmt: skip
            pos += len(t) + 1
        vectors = np.asarray(app.services.embedder.get().embed(texts), dtype=np.float32)
        doc = DocumentInfo(doc_id=doc_id, name=name, kind="text", pages=1, chunks=len(part),
                           size=pos, added=time.time())  # fmt: skip
        app.services.store.save_original(doc_id, "\n".join(texts).encode())
        app.services.store.begin_document(info.name, doc)
        app.services.store.add_chunks(info.name, part, vectors)
        app.services.store.finish_document(info.name, doc)
        print(f"  {first + len(part)} chunks embedded, {time.perf_counter() - t0:.0f} s",
              file=sys.stderr, flush=True)  # fmt: skip
    app.retrieve("warm up")  # the BM25 index, saved beside the data
    app.close()
    (target / "READY").write_text(f"{chunks}\n")
    return target, time.perf_counter() - t0


def add_users(env: dict[str, str], users: int) -> tuple[list[str], list[str]]:
    """An administrator and `users` readers with a key each (in the run's record store);
    the collection shared with everyone. Returns (names, keys)."""
    from rag.core.settings import Settings
    from rag.records import open_database
    from rag.team.access import READER, Sharing
    from rag.team.keys import open_keys
    from rag.team.sharing import SharingStore
    from rag.team.signin import open_accounts

    settings = Settings.from_env(env)
    accounts, keys = open_accounts(settings), open_keys(settings)
    accounts.add("admin", PASSWORD, admin=True)
    SharingStore(open_database(settings)).set(COLLECTION, Sharing("", everyone=READER))
    names = [f"reader{i}" for i in range(users)]
    made = [keys.create(accounts.add(n, PASSWORD).id, "bench")[1] for n in names]
    return names, made


def _child(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


def _phase(env: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    command = _child("--load", json.dumps(spec))
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=spec["seconds"] + 600)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"load process failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run(args: argparse.Namespace, data: Path, database_url: str, tmp: Path) -> dict[str, Any]:
    import httpx

    run_dir = tmp / "data"
    shutil.copytree(data, run_dir, ignore=shutil.ignore_patterns(".docchat.lock"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCCHAT_", "OPENAI_"))}
    env.update(DOCCHAT_DATA_DIR=str(run_dir), DOCCHAT_AUTH="accounts",
               DOCCHAT_COLLECTION=COLLECTION, DOCCHAT_DATABASE_URL=database_url,
               DOCCHAT_API="false", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               ANONYMIZED_TELEMETRY="False")  # fmt: skip
    names, keys = add_users(env, args.users)
    with socket.socket() as s:  # a free port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = (tmp / "server.log").open("w")
    server = subprocess.Popen(_child("--serve", str(port)), env=env, cwd=ROOT,
                              stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        body = {
            "model": f"docchat/{COLLECTION}",
            "messages": [{"role": "user", "content": "What is the incubation period?"}],
        }
        while True:  # up, and the model loaded (a first chat embeds a question)
            try:
                r = httpx.post(url + "/v1/chat/completions", json=body, timeout=120,
                               headers={"Authorization": f"Bearer {keys[0]}"})  # fmt: skip
                if r.status_code == 200:
                    break
                raise RuntimeError(f"warm-up answered {r.status_code}: {r.text[:300]}")
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp / "server.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        base = {"url": url, "keys": keys, "users": names}
        mix = _phase(env, {**base, "phase": "mix", "clients": args.clients,
                           "seconds": args.seconds})  # fmt: skip
        checks = _phase(env, {**base, "phase": "keys", "clients": args.auth_clients,
                              "seconds": args.auth_seconds})  # fmt: skip
        signins = _phase(env, {**base, "phase": "signin", "clients": args.auth_clients,
                               "seconds": args.auth_seconds})  # fmt: skip
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    auth = {"clients": args.auth_clients}
    return {**mix, "key_check": {**auth, **checks}, "signin": {**auth, **signins}}


def main(argv: list[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--json", metavar="OUT", type=Path, default=None)
    p.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--chunks", type=int, default=10_000)
    p.add_argument("--users", type=int, default=8)
    p.add_argument("--auth-clients", type=int, default=8)
    p.add_argument("--auth-seconds", type=float, default=20.0)
    p.add_argument("--load", metavar="SPEC", help=argparse.SUPPRESS)  # a load process
    p.add_argument("--serve", metavar="PORT", type=int, help=argparse.SUPPRESS)  # the server
    args = p.parse_args(args_in)
    if args.load:
        return _load_main(json.loads(args.load))
    if args.serve:
        return _serve_main(args.serve)

    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    load_before = os.getloadavg()[0]
    data, build_s = build_data(args.chunks)
    with tempfile.TemporaryDirectory(prefix="docchat-bench-api-") as tmp:
        postgres = None
        url = ""
        if args.database == "postgresql":
            sys.path.insert(0, str(ROOT))
            from tests.fixtures.postgres import PostgresServer

            postgres = PostgresServer()
            postgres.start()
        try:
            for _ in range(150) if postgres is not None else ():  # up within 30 s
                try:
                    url = postgres.create_database()
                    break
                except Exception:  # not accepting connections yet
                    time.sleep(0.2)
            figures = run(args, data, url, Path(tmp))
        finally:
            if postgres is not None:
                postgres.stop()
    result = {
        "benchmark": "api_load",
        "date": started,
        "command": shlex.join(["python", "benchmarks/api_load.py", *args_in]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "loadavg_before": round(load_before, 1),
            "loadavg_after": round(os.getloadavg()[0], 1),  # others' load moves the figures
        },
        "database": args.database,
        "mode": "extractive",
        "auth": "accounts",
        "rate_limit": "off (DOCCHAT_RATE_LIMIT=off)",
        "chunks": args.chunks,
        "clients": args.clients,
        "users": args.users,
        "mix": {kind: weight / 100 for kind, weight in MIX},
        "data_build_s": round(build_s, 1),
        **figures,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
