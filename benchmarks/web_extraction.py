"""Main text kept and boilerplate dropped: the web page reader against the HTML file reader.

    .venv/bin/python benchmarks/web_extraction.py [--json benchmarks/results/web_extraction.json]

Ten real documentation pages are kept in tests/fixtures/web_pages/ (five Node.js API
pages, five pages of the Rust book and reference; their sources and licenses are in
its README.md). `expected.json` lists, per page, sentences of the main text (the
first sentence of paragraphs spread over the page's content area) and boilerplate
strings (sidebar and menu entries, the version picker, keyboard-help popups) that do
not occur in the main text. Each reader's text is compared with whitespace removed
and case folded (readers space inline elements differently: "Box<T> ." and
"Box<T>."):

    main_kept = main sentences found in the text / main sentences
    boilerplate_dropped = boilerplate strings not found in the text / boilerplate strings

Readers: `html` (rag/ingest/html.py, what an uploaded .html file goes through) and
`trafilatura` (rag/ingest/web_page.py, the web page reader). Seconds are the
reader's call per page, on this shared machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rag.ingest import html, web_page
from rag.ingest.blocks import Parsed

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "tests" / "fixtures" / "web_pages"
READERS: dict[str, Callable[[str, str], Parsed]] = {
    "html": html.parse,
    "trafilatura": web_page.parse,
}


def squash(text: str) -> str:
    return "".join(text.split()).casefold()


def measure(
    reader: Callable[[str, str], Parsed], page: str, expected: dict[str, list[str]]
) -> dict[str, float]:
    source = html.decode_html((PAGES / page).read_bytes())
    t0 = time.perf_counter()
    text, _, _ = reader(source, ".html")
    seconds = time.perf_counter() - t0
    got = squash(text)
    main = expected["main"]
    boiler = expected["boilerplate"]
    kept = sum(squash(s) in got for s in main)
    dropped = sum(squash(s) not in got for s in boiler)
    return {
        "main_kept": kept / len(main),
        "boilerplate_dropped": dropped / len(boiler),
        "main_total": len(main),
        "boilerplate_total": len(boiler),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    expected = json.loads((PAGES / "expected.json").read_text(encoding="utf-8"))
    pages: dict[str, dict[str, dict[str, float]]] = {}
    totals: dict[str, dict[str, float]] = {}
    for page, want in expected.items():
        pages[page] = {name: measure(reader, page, want) for name, reader in READERS.items()}
    for name in READERS:
        rows = [pages[p][name] for p in pages]
        main_n = sum(r["main_total"] for r in rows)
        boiler_n = sum(r["boilerplate_total"] for r in rows)
        totals[name] = {
            "main_kept": round(sum(r["main_kept"] * r["main_total"] for r in rows) / main_n, 3),
            "boilerplate_dropped": round(
                sum(r["boilerplate_dropped"] * r["boilerplate_total"] for r in rows) / boiler_n, 3
            ),
            "seconds_per_page": round(sum(r["seconds"] for r in rows) / len(rows), 4),
        }
    print(f"{'page':34} {'reader':12} {'main kept':>10} {'boilerplate dropped':>20}")
    for page, by in pages.items():
        for name, r in by.items():
            print(f"{page:34} {name:12} {r['main_kept']:10.0%} {r['boilerplate_dropped']:20.0%}")
    for name, t in totals.items():
        print(
            f"{'ALL (' + str(len(pages)) + ' pages)':34} {name:12} {t['main_kept']:10.1%} "
            f"{t['boilerplate_dropped']:20.1%}  {t['seconds_per_page']:.3f} s/page"
        )
    if args.json:
        out = {
            "benchmark": "web_extraction",
            "date": datetime.date.today().isoformat(),
            "command": " ".join([".venv/bin/python", *sys.argv]),
            "pages": len(pages),
            "totals": totals,
            "per_page": {
                p: {n: {k: round(v, 4) for k, v in r.items()} for n, r in by.items()}
                for p, by in pages.items()
            },
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
