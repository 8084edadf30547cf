"""Retrieval latency at 1k, 10k and 100k chunks, and resident memory.

    .venv/bin/python benchmarks/query.py [--json OUT] [--sizes 1000,10000,100000]

One collection grows through the sizes. Chunk texts are real: COVID-QA sentences
recombined into ~800-character chunks, so BM25 sees real vocabulary and posting
lengths. Vectors are synthetic (random unit vectors): embedding 100k chunks would
take an hour here, and HNSW search time does not depend on what the vectors mean.
Queries are the real COVID-QA questions, embedded by the real model each time.

Per size: p50/p95 of the whole search (`DocChat.retrieve`: clean, embed, dense
search, BM25, fuse, prompt) and of each stage, the one-off BM25 build after the
inserts, and the process's resident memory.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rag import Chunk, DocChat, DocumentInfo, Settings

ROOT = Path(__file__).resolve().parents[1]
COVID = ROOT.parent / "shared" / "data" / "covid-qa" / "covidQA.json"
QUERIES = 200
DOC_CHUNKS = 1000  # chunks per synthetic document


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def corpus() -> tuple[list[str], list[str]]:
    data = json.loads(COVID.read_text(encoding="utf-8"))["data"]
    sentences, questions = [], []
    for entry in data:
        para = entry["paragraphs"][0]
        sentences += [s for s in re.split(r"(?<=[.!?])\s+", para["context"]) if len(s) > 30]
        questions += [q["question"] for q in para["qas"]]
    return sentences, questions


def synthetic_chunks(sentences: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts: list[str] = []
        while sum(map(len, parts)) < 800:
            parts.append(rng.choice(sentences))
        out.append(" ".join(parts))
    return out


def add_chunks(
    app: DocChat, collection: str, sentences: list[str], n: int, first_doc: int, dim: int
) -> None:
    """Add `n` synthetic chunks as documents of DOC_CHUNKS chunks each. The texts are
    made one document at a time (all 1M at once would hold 0.8 GB of strings while
    memory is measured)."""
    rng = np.random.default_rng(first_doc)
    t0 = time.perf_counter()
    for d in range(0, n, DOC_CHUNKS):
        part = synthetic_chunks(sentences, min(DOC_CHUNKS, n - d), first_doc * DOC_CHUNKS + d)
        doc_id = f"{first_doc + d // DOC_CHUNKS:064x}"
        name = f"synthetic-{doc_id[-6:]}.txt"
        chunks, pos = [], 0
        for i, t in enumerate(part):
            end = pos + len(t)
            chunks.append(Chunk(doc_id, name, i, t, start=pos, end=end, tokens=len(t) // 4))
            pos += len(t) + 1
        vectors = rng.standard_normal((len(part), dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        info = DocumentInfo(
            doc_id=doc_id,
            name=name,
            kind="text",
            pages=1,
            chunks=len(part),
            size=pos,
            added=time.time(),
        )
        app.services.store.begin_document(collection, info)
        app.services.store.add_chunks(collection, chunks, vectors)
        app.services.store.finish_document(collection, info)
        if (d + len(part)) % 100_000 == 0:
            print(f"  +{d + len(part)} chunks in {time.perf_counter() - t0:.0f} s, "
                  f"RSS {rss_mb():.0f} MB", file=sys.stderr, flush=True)  # fmt: skip


def pct(values: list[float], p: float) -> float:
    return round(float(np.percentile(values, p)) * 1000, 2)


def measure(app: DocChat, questions: list[str]) -> dict[str, object]:
    t0 = time.perf_counter()
    app.services.lexical.sync(app.settings.collection).scores("warm up")  # the one-off BM25 build
    build_s = time.perf_counter() - t0
    app.retrieve(questions[0])  # first-call costs are not search time
    totals: list[float] = []
    stages: dict[str, list[float]] = {}
    for q in questions:
        t = time.perf_counter()
        r = app.retrieve(q)
        totals.append(time.perf_counter() - t)
        for k, v in r.timings.items():
            stages.setdefault(k, []).append(v)
    return {
        "search_ms_p50": pct(totals, 50),
        "search_ms_p95": pct(totals, 95),
        "stages_ms_p50": {k: pct(v, 50) for k, v in stages.items()},
        "stages_ms_p95": {k: pct(v, 95) for k, v in stages.items()},
        "lexical_build_s": round(build_s, 2),
        "rss_mb": round(rss_mb(), 1),
    }


def main() -> int:
    global DOC_CHUNKS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", metavar="OUT", default=None)
    p.add_argument("--sizes", default="1000,10000,100000")
    p.add_argument("--doc-chunks", type=int, default=DOC_CHUNKS,
                   help="chunks per synthetic document (fewer: more documents)")  # fmt: skip
    args = p.parse_args()
    DOC_CHUNKS = args.doc_chunks
    sizes = sorted(int(s) for s in args.sizes.split(","))
    base = Settings.from_env()
    sentences, questions = corpus()
    questions = random.Random(0).sample(questions, QUERIES)
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="docchat-bench-q-") as tmp:
        settings = base.with_(data_dir=Path(tmp), chroma_host="", collection="bench")
        app = DocChat.open(settings.without_llm())
        app.embedder.embed(["load the model"])
        info = app.ensure_collection()
        have = 0
        for size in sizes:
            t0 = time.perf_counter()
            add_chunks(
                app, info.name, sentences, size - have, have // DOC_CHUNKS + 1, info.dimension
            )
            insert_s = time.perf_counter() - t0
            have = size
            row = {"chunks": app.collection().chunks, "insert_s": round(insert_s, 1)}
            row.update(measure(app, questions))
            results.append(row)
            print(
                f"{row['chunks']:>7} chunks: search p50 {row['search_ms_p50']} ms, "
                f"p95 {row['search_ms_p95']} ms; BM25 build {row['lexical_build_s']} s; "
                f"RSS {row['rss_mb']} MB",
                flush=True,
            )
    out = {
        "benchmark": "query",
        "machine": {
            "cpus": __import__("os").cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "settings": {
            "embedding_backend": settings.embedding_backend,
            "hybrid": settings.hybrid,
            "dense_weight": settings.dense_weight,
            "top_k": settings.top_k,
        },
        "queries_per_size": QUERIES,
        "chunks_per_document": DOC_CHUNKS,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "sizes": results,
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
