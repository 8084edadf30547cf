"""Summary coverage: how much of a document its whole-document summary cites, what the
summary costs, and how long it takes.

    .venv/bin/python benchmarks/summary_coverage.py [--mode llm|extractive|both]
        [--json benchmarks/results/summary_coverage.json]

(from the repository's root; it starts the tests' fake OpenAI server in-process,
tests/fixtures/fake_openai.py, which is not part of the installed package).

Documents, ingested with the defaults (the real embedding model, offline) into a
temporary data dir:
- each PDF of ../shared/data/pdfs/sample-files/ with an outline: its sections are the
  distinct `Chunk.section` values (the outline's entries, rag/ingest/pdf_outline.py);
- each SEC 10-Q filing of ../shared/data/sec-10-q/docs/: its sections are its Items
  ("Part I, Item 2", "Part II, Item 1A"), found in its text (`items`): each Item's last
  heading (the first ones are the table of contents) starts it, and a chunk belongs to
  every Item its span overlaps. The cover page and the table of contents are no Item.

Each document is summarized (`DocChat.summarize`, no question) and

    coverage = sections with at least one chunk cited by the summary / sections

in LLM mode (map-reduce against the fake OpenAI server, which answers each passage or
partial line with one short cited sentence: so the figure measures the pipeline,
whether a part of the document is lost on the way, not a model's writing) and in
extractive mode (no LLM). Also: LLM calls and tokens (prompt + completion, as the fake
server counts them: words) per 100 pages, and seconds per 100 pages (the fake server
answers at once, so the LLM mode's time is DocChat's own; extractive: the target is
under 10 s). Settings: the defaults (`context_tokens` 3,000, `summary_max_calls`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag import Chunk, DocChat, Settings  # noqa: E402
from rag.answering.summary_prompts import message_tokens  # noqa: E402
from tests.fixtures.fake_openai import FakeOpenAIServer  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SAMPLES = SHARED / "pdfs" / "sample-files"
SEC = SHARED / "sec-10-q" / "docs"
PASSWORDS = {"libreoffice-writer-password.pdf": "openpassword"}

_PART = re.compile(r"^\s*PART\s+(II|I)\b", re.IGNORECASE | re.MULTILINE)
_ITEM = re.compile(r"^\s*Item\s+(\d{1,2}[AB]?)\s*[.:\u2014\u2013-]", re.IGNORECASE | re.MULTILINE)

DATASETS = (("samples", "sample-files (outlines)"), ("sec-10-q", "SEC 10-Q"))
Position = tuple[int, int]  # (page, character offset in the page's text)


def items(chunks: Sequence[Chunk]) -> list[set[str]]:
    """The Items each chunk of a 10-Q belongs to ("Part II, Item 1A"), by position."""
    found: dict[Position, str] = {}  # every heading, once (chunks overlap)
    for c in chunks:
        marks = [(m.start(), "part", m.group(1).upper()) for m in _PART.finditer(c.text)]
        marks += [(m.start(), "item", m.group(1).upper()) for m in _ITEM.finditer(c.text)]
        for offset, kind, value in marks:
            found.setdefault((c.page or 0, c.start + offset), f"{kind}:{value}")
    part, last = "I", {}  # each Item's last heading: the body's, after the table of contents
    for pos in sorted(found):
        kind, value = found[pos].split(":")
        if kind == "part":
            part = value
        else:
            last[f"Part {part}, Item {value}"] = pos
    starts = sorted((pos, name) for name, pos in last.items())
    out = []
    for c in chunks:
        lo, hi = (c.page or 0, c.start), (c.page or 0, c.end)
        mine = set()
        for i, (pos, name) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else (10**9, 0)
            if pos < hi and lo < end:
                mine.add(name)
        out.append(mine)
    return out


def outline_sections(chunks: Sequence[Chunk]) -> list[set[str]]:
    return [{c.section} if c.section else set() for c in chunks]


def measure(
    app: DocChat,
    doc_id: str,
    collection: str,
    sections: list[set[str]],
    server: FakeOpenAIServer | None = None,
) -> dict[str, Any]:
    sent = len(server.requests) if server else 0
    t0 = time.perf_counter()
    answer = app.summarize(doc_id, collection=collection).run()
    seconds = time.perf_counter() - t0
    requests = server.requests[sent:] if server else []
    everything = set().union(*sections)
    cited = set().union(*(sections[s.chunk.index] for s in answer.sources)) & everything
    return {
        "coverage": round(len(cited) / len(everything), 4) if everything else None,
        "sections_cited": len(cited),
        "sources": len(answer.sources),
        "llm_calls": answer.llm_calls,
        "tokens": answer.prompt_tokens + answer.completion_tokens,  # the server's: words
        # What a tokenizer would count, about: 4 characters a token (prompts.estimate_tokens).
        "prompt_tokens_estimated": sum(message_tokens(r["messages"]) for r in requests),
        "seconds": round(seconds, 3),
        "error": answer.error,
    }


def per_100_pages(rows: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    pages = sum(r["pages"] for r in rows)
    done = [r[mode] for r in rows]
    covered = [d["coverage"] for d in done if d["coverage"] is not None]
    return {
        "coverage": round(sum(covered) / len(covered), 4) if covered else None,
        "coverage_min": min(covered) if covered else None,
        "llm_calls_per_100_pages": round(100 * sum(d["llm_calls"] for d in done) / pages, 1),
        "tokens_per_100_pages": round(100 * sum(d["tokens"] for d in done) / pages),
        "prompt_tokens_estimated_per_100_pages": round(
            100 * sum(d.get("prompt_tokens_estimated", 0) for d in done) / pages
        ),
        "seconds_per_100_pages": round(100 * sum(d["seconds"] for d in done) / pages, 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--mode", choices=("llm", "extractive", "both"), default="both")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    modes = ["llm", "extractive"] if args.mode == "both" else [args.mode]
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer(api_key=None) as llm_server:
        base = Settings(data_dir=Path(tmp)).without_llm()
        plain = DocChat.open(base)
        with_llm = DocChat.open(base.with_(openai_base_url=llm_server.base_url,
                                           chat_model="fake-model"),
                                embedder=plain.embedder, store=plain.services.store)  # fmt: skip
        engines = {"llm": with_llm, "extractive": plain}
        t0 = time.perf_counter()
        for path in sorted(SAMPLES.glob("*.pdf")):
            plain.ingest(path.name, path.read_bytes(), collection="samples",
                         password=PASSWORDS.get(path.name))  # fmt: skip
        plain.ingest_paths(sorted(SEC.glob("*.pdf")), collection="sec-10-q")
        print(f"indexed in {time.perf_counter() - t0:.0f} s", flush=True)
        rows: list[dict[str, Any]] = []
        for collection, dataset in DATASETS:
            for doc in plain.documents(collection):
                chunks = plain.chunks(doc.doc_id, collection=collection)
                sections = items(chunks) if collection == "sec-10-q" else outline_sections(chunks)
                if len(set().union(*sections)) < 2:
                    continue  # no outline: nothing to cover
                row: dict[str, Any] = {"dataset": dataset, "name": doc.name, "pages": doc.pages,
                                       "chunks": len(chunks),
                                       "sections": len(set().union(*sections))}  # fmt: skip
                for mode in modes:
                    server = llm_server if mode == "llm" else None
                    row[mode] = measure(engines[mode], doc.doc_id, collection, sections, server)
                rows.append(row)
                print(json.dumps(row), flush=True)
    datasets = {}
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        mine = [r for r in rows if r["dataset"] == dataset]
        datasets[dataset] = {
            "documents": len(mine),
            "pages": sum(r["pages"] for r in mine),
            "sections": sum(r["sections"] for r in mine),
            **{mode: per_100_pages(mine, mode) for mode in modes},
        }
    s = Settings()
    result = {
        "benchmark": "summary_coverage",
        "date": datetime.date.today().isoformat(),
        "command": ".venv/bin/python benchmarks/summary_coverage.py"
        + (f" --mode {args.mode}" if args.mode != "both" else "")
        + (f" --json {args.json}" if args.json else ""),
        "settings": {
            "context_tokens": s.context_tokens,
            "summary_max_calls": s.summary_max_calls,
            "summary_seconds": s.summary_seconds,
        },
        "machine": {"cpus": os.cpu_count(), "loadavg_after": round(os.getloadavg()[0], 2)},
        "datasets": datasets,
        "documents": rows,
    }
    print(json.dumps(datasets, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
