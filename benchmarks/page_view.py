"""Seconds to open a source's page view: first render (alignment, render, marks, PNG)
and from the cache, p50/p95 over chunks of the sample PDFs.

    python -m benchmarks.page_view [--json benchmarks/results/page_view.json]

(from the repository's root, as a module: it borrows the tests' fake embedder,
tests/fixtures/fakes.py, which is not part of the installed package).

Each PDF of `../shared/data/pdfs/sample-files` is indexed (fake embedder: the view
does not depend on vectors); then up to 4 chunks per document on different pages are
opened twice, as the Chat page opens a source.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from rag import DocChat, Settings
from tests.fixtures.fakes import HashEmbedder

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "data" / "pdfs" / "sample-files"


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = DocChat.open(Settings(data_dir=Path(tmp)), embedder=HashEmbedder())
        app.ensure_collection()
        app.ingest_paths(sorted(SAMPLES.glob("*.pdf")))
        first: list[float] = []
        cached: list[float] = []
        for doc in app.documents():
            seen: set[int] = set()
            for c in app.chunks(doc.doc_id):
                if c.page is None or c.page in seen or len(seen) >= 4:
                    continue
                seen.add(c.page)
                for out in (first, cached):
                    t = time.perf_counter()
                    app.page_view(doc.doc_id, c.page, chunk=c.index, sentence=(0, 40))
                    out.append(time.perf_counter() - t)
    result = {
        "views": len(first),
        "first_p50_s": round(statistics.median(first), 3),
        "first_p95_s": round(_pct(first, 0.95), 3),
        "first_max_s": round(max(first), 3),
        "cached_p50_s": round(statistics.median(cached), 3),
        "cached_p95_s": round(_pct(cached, 0.95), 3),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
