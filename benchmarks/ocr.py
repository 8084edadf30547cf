"""OCR quality and speed: pages with a text layer, rendered to images, read back by OCR.

    .venv/bin/python benchmarks/ocr.py [--dpi 100,150,200,300] [--json OUT]

Each page of `PAGES` (files of ../shared/data/pdfs/sample-files/) is rendered by
pdfium at each resolution (`rag.ingest.pdfium.Pdf.render`, as the PDF reader does)
and read by `rag.ingest.ocr` (RapidOCR), the product's own path. The reference is
pypdf's text of the same page. Both sides are NFKC-normalized (ligatures: "ﬁ" is
"fi") and their whitespace collapsed to single spaces; then

    CER = Levenshtein distance / reference length

and, to tell lost spaces from misread letters, the same with all whitespace removed
(`cer_nospace`). Seconds per page are the OCR call alone (the engine is loaded before
timing; rendering is timed separately). Pages are grouped:

- `english`: single-column English pages (the issue's target: CER <= 3 %);
- `latin`: single-column lorem ipsum (Latin script, not English words);
- `two-column`: two-column pages, where reading order decides most of the CER.

The machine is shared: the load average (`os.getloadavg`) is printed and written.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import unicodedata
from pathlib import Path

import numpy as np

from rag.ingest import ocr
from rag.ingest.pdfium import Pdf

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "data" / "pdfs" / "sample-files"
# (file, 1-based page, group): 10 pages of 9 files, chosen for English text layers.
PAGES = [
    ("crazyones-pdfa.pdf", 1, "english"),
    ("google-doc-document.pdf", 1, "english"),
    ("pdflatex-4-pages.pdf", 1, "english"),
    ("pdflatex-4-pages.pdf", 4, "english"),
    ("pdflatex-outline.pdf", 1, "english"),
    ("libre-office-link.pdf", 1, "english"),
    ("minimal-document.pdf", 1, "latin"),
    ("pdflatex-image.pdf", 1, "latin"),
    ("tracemonkey.pdf", 1, "two-column"),
    ("multicolumn.pdf", 1, "two-column"),
]


def normalize(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions), one numpy row per char of a."""
    if not a or not b:
        return max(len(a), len(b))
    codes = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    steps = np.arange(len(b) + 1)
    row = steps.copy()
    for i, ch in enumerate(a, 1):
        sub = row[:-1] + (codes != ord(ch))
        new = np.empty_like(row)
        new[0] = i
        new[1:] = np.minimum(row[1:] + 1, sub)
        # Insertions run left to right: new[j] = min over k <= j of new[k] + (j - k).
        row = np.minimum.accumulate(new - steps) + steps
    return int(row[-1])


def cer(reference: str, hypothesis: str) -> float:
    return levenshtein(reference, hypothesis) / max(1, len(reference))


def reference_text(path: Path, page: int) -> str:
    from pypdf import PdfReader

    return str(PdfReader(path).pages[page - 1].extract_text())


def measure(
    pages: list[tuple[str, int, str]], dpis: list[int], out: Path | None = None
) -> dict[str, object]:
    """Every page at every DPI; with `out`, the rows so far are written after each page."""
    ocr.read_image(np.full((64, 64, 3), 255, dtype=np.uint8))  # load the engine untimed
    rows: list[dict[str, object]] = []
    for name, page, group in pages:
        path = SAMPLES / name
        ref = normalize(reference_text(path, page))
        pdf = Pdf(path.read_bytes(), None)
        try:
            for dpi in dpis:
                t0 = time.perf_counter()
                image = pdf.render(page - 1, dpi)
                t1 = time.perf_counter()
                hyp = normalize(ocr.text_of(ocr.read_image(image)))
                t2 = time.perf_counter()
                row = {
                    "file": name, "page": page, "group": group, "dpi": dpi,
                    "chars": len(ref), "cer": cer(ref, hyp),
                    "cer_nospace": cer(ref.replace(" ", ""), hyp.replace(" ", "")),
                    "ocr_s": t2 - t1, "render_s": t1 - t0,
                    "pixels": int(image.shape[0] * image.shape[1]),
                }  # fmt: skip
                rows.append(row)
                print(
                    f"{name:32} p{page:<3} {group:10} {dpi:4} dpi  CER {row['cer']:6.1%}  "
                    f"no-space {row['cer_nospace']:6.1%}  {row['ocr_s']:5.1f} s",
                    flush=True,
                )
        finally:
            pdf.close()
        if out is not None:  # a long run under load keeps what it measured
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"pages": rows}, indent=2) + "\n", encoding="utf-8")
    return {"pages": rows, "summary": summarize(rows, dpis)}


def summarize(rows: list[dict[str, object]], dpis: list[int]) -> list[dict[str, object]]:
    """Per DPI and group: CER over all characters (sum of distances / sum of lengths)."""
    out: list[dict[str, object]] = []
    for dpi in dpis:
        for group in ("english", "latin", "two-column", "all"):
            sel = [r for r in rows if r["dpi"] == dpi and group in ("all", r["group"])]
            if not sel:
                continue
            chars = sum(int(str(r["chars"])) for r in sel)

            def pooled(key: str, sel: list[dict[str, object]] = sel, chars: int = chars) -> float:
                return sum(float(str(r[key])) * int(str(r["chars"])) for r in sel) / chars

            out.append({
                "dpi": dpi, "group": group, "pages": len(sel), "chars": chars,
                "cer": pooled("cer"), "cer_nospace": pooled("cer_nospace"),
                "s_per_page": sum(float(str(r["ocr_s"])) for r in sel) / len(sel),
            })  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dpi", default="100,150,200,300", help="comma-separated DPIs")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--pages", default=":", help="a slice of PAGES, e.g. 3: (default all)")
    args = parser.parse_args()
    dpis = [int(x) for x in args.dpi.split(",") if x.strip()]
    lo, _, hi = args.pages.partition(":")
    pages = PAGES[int(lo) if lo else None : int(hi) if hi else None]
    load_before = os.getloadavg()
    result = measure(pages, dpis, args.json)
    result["machine"] = {
        "cpus": os.cpu_count(), "platform": platform.platform(),
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
    }  # fmt: skip
    print(f"\nload average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"{'dpi':>4} {'group':11} {'pages':>5} {'CER':>7} {'no-space':>9} {'s/page':>7}")
    for s in result["summary"]:  # type: ignore[union-attr]
        print(
            f"{s['dpi']:4} {s['group']:11} {s['pages']:5} {s['cer']:7.2%} "
            f"{s['cer_nospace']:9.2%} {s['s_per_page']:7.2f}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
