"""A load check of the HTTP API: concurrent OpenAI-style clients asking questions.

    .venv/bin/python benchmarks/api_load.py [--json OUT] [--clients 32] [--seconds 60]
                                            [--chunks 10000]

One server process (the API of `rag serve`, in extractive mode: no LLM) over one
collection of `--chunks` chunks built as `benchmarks/query.py` builds them (real
COVID-QA text, synthetic vectors). The clients run in a second process (asyncio +
httpx, one connection each), each sending the next question as soon as its answer
arrives: POST /v1/chat/completions, not streamed, real COVID-QA questions. Reported:
requests, requests/s, p50/p95/max latency, errors (any status but 200, or a body
without an answer). Targets (issue 14): 0 errors, p95 under 1 s at 10k chunks.

Left out: streaming clients (the time to the first token is what a streamed
extractive answer adds nothing to), an LLM behind the API (its latency is the LLM's).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _clients(url: str, clients: int, seconds: float, questions: list[str]) -> dict[str, object]:
    """Run in the load process: `clients` loops for `seconds`; latencies and errors."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []

    async def one(i: int, client: httpx.AsyncClient, stop: float) -> None:
        rng = random.Random(i)
        while time.monotonic() < stop:
            body = {"model": "docchat/bench",
                    "messages": [{"role": "user", "content": rng.choice(questions)}]}  # fmt: skip
            t = time.perf_counter()
            try:
                r = await client.post(f"{url}/v1/chat/completions", json=body)
                ok = r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
                if not ok:
                    errors.append(f"{r.status_code}: {r.text[:200]}")
            except (httpx.HTTPError, KeyError, ValueError) as e:
                errors.append(type(e).__name__)
            latencies.append(time.perf_counter() - t)

    async def run() -> float:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            t0 = time.monotonic()
            await asyncio.gather(*(one(i, client, t0 + seconds) for i in range(clients)))
            return time.monotonic() - t0

    elapsed = asyncio.run(run())
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000, 1)

    return {
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "latency_ms_p50": pct(50),
        "latency_ms_p95": pct(95),
        "latency_ms_max": round(ordered[-1] * 1000, 1),
        "errors": len(errors),
        "error_samples": errors[:5],
        "seconds": round(elapsed, 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", metavar="OUT", default=None)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--chunks", type=int, default=10_000)
    p.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)  # the client process
    args = p.parse_args()

    from query import QUERIES, add_chunks, corpus, synthetic_chunks

    sentences, questions = corpus()
    questions = random.Random(0).sample(questions, QUERIES)
    if args.load:
        result = _clients(args.load, args.clients, args.seconds, questions)
        print(json.dumps(result))
        return 0

    from rag import DocChat, Settings
    from rag.api import serve_in_thread

    with tempfile.TemporaryDirectory(prefix="docchat-bench-api-") as tmp:
        settings = Settings.from_env().with_(
            data_dir=Path(tmp), chroma_host="", collection="bench", openai_api_key="",
            openai_base_url="",
        )  # fmt: skip
        app = DocChat.open(settings.without_llm())
        info = app.ensure_collection()
        t0 = time.perf_counter()
        add_chunks(app, info.name, synthetic_chunks(sentences, args.chunks, 1), 1, info.dimension)
        app.retrieve(questions[0])  # the BM25 build and the model's first call
        build_s = time.perf_counter() - t0
        with socket.socket() as s:  # a free port
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        stop = serve_in_thread(app, "127.0.0.1", port)
        try:
            out = subprocess.run(
                [sys.executable, __file__, "--load", f"http://127.0.0.1:{port}",
                 "--clients", str(args.clients), "--seconds", str(args.seconds)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
        finally:
            stop()
    result = {
        "benchmark": "api_load",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
        "mode": "extractive",
        "chunks": args.chunks,
        "clients": args.clients,
        "build_s": round(build_s, 1),
        **json.loads(out.stdout.strip().splitlines()[-1]),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
