"""The page view: a source's page rendered, its chunk's characters marked exactly.

Exactness: for every chunk of the pages checked, pdfium's characters inside the
marked bands are the chunk's text (up to whitespace, hyphens at line breaks and
ligatures), on the sample PDFs, on SEC filings with tables, on a rotated page and on
a page with a crop box. Chunks come from the real loader and splitter (words as
tokens: the boxes do not depend on where chunks end).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.generic import RectangleObject

from rag import DocChat, RagError, Settings
from rag.core.errors import DocumentNotFoundError
from rag.core.models import Chunk
from rag.ingest.loaders import load
from rag.ingest.pdfium import PageChars, Pdf, Rect
from rag.ingest.splitting import split
from rag.views.alignment import align, keys
from rag.views.markdown import link_citations, safe_markdown, text_view_html
from rag.views.marks import bands, inside, text_inside
from rag.views.text_view import TextView, page_text
from tests.fixtures.fakes import HashEmbedder
from tests.fixtures.paths import SAMPLES, SHARED, need_shared

SEC = SHARED / "sec-10-q" / "docs"
# Not checked character by character: in these files pdfium gives every letter of an
# Arabic word the one box of the word, so the letters cannot be told apart (the word
# is marked whole).
NOT_CHECKED = {"habibi.pdf", "habibi-oneline-cmap.pdf", "habibi-rotated.pdf"}
# A math book whose glyphs pdfium decodes to other characters ("⋃" without Unicode):
# at most this share of its chunks may take in a neighbouring label.
TOLERANCE = {"GeoTopo-komprimiert.pdf": 0.01}
MAX_PAGES = 120  # pages checked per file: every page of the samples


def _words(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\S+", text)]


def _norm(text: str) -> str:
    return keys(text)[0].replace("-", "")


def _read_differently(
    chars: PageChars, mapping: list[int], picked: list[int], rects: list[Rect]
) -> bool:
    """Every matched character is marked, and what else the bands hold are pdfium's
    own readings of glyphs inside the chunk: characters no part of the page text
    matched, between the chunk's first and last ("↦" is "7→" to pdfium, "≠" "6=").
    Nearly all of the chunk must be matched."""
    shown = set(inside(chars, rects))
    if not picked or any(k not in shown for k in picked):
        return False
    matched = {j for j in mapping if j >= 0}
    lo, hi = min(picked), max(picked)
    extra = [k for k in shown - set(picked) if not chars.text[k].isspace()]
    return all(k not in matched and lo < k < hi for k in extra)


def _check_file(name: str, data: bytes) -> tuple[int, list[str]]:
    """(chunks checked, what went wrong) for every chunk of the file's text pages."""
    doc = load(name, data)
    chunks = split(doc, _words, chunk_tokens=150, overlap=30)
    pdf = Pdf(data, None)
    problems: list[str] = []
    checked = 0
    by_page: dict[int, list[Chunk]] = {}
    for c in chunks:
        if c.page is not None and c.page <= MAX_PAGES and not c.ocr:
            by_page.setdefault(c.page, []).append(c)
    try:
        for page, on_page in by_page.items():
            chars = pdf.chars(page - 1)
            mapping = align(page_text(on_page), chars.text)
            pdfium_keys = set(_norm(chars.text))
            for c in on_page:
                picked = [mapping[i] for i in range(c.start, c.end) if mapping[i] >= 0]
                rects = bands(chars, picked)
                got = _norm(text_inside(chars, rects))
                want = _norm(c.text)
                marked = _norm("".join(c.text[i - c.start] for i in range(c.start, c.end)
                                       if mapping[i] >= 0))  # fmt: skip
                checked += 1
                # Characters pdfium does not have on the page at all (pypdf decodes some
                # math glyphs, "↦" where pdfium reads "7→", and private-use flag glyphs)
                # cannot be marked; everything else must be.
                unmarked = [ch for i in range(c.start, c.end) if mapping[i] < 0
                            for ch in _norm(c.text[i - c.start])]  # fmt: skip
                absent = all(ch not in pdfium_keys for ch in unmarked)
                # A two-line table heading is read in a different order by the two
                # engines: the same characters, another order, is still exact.
                # A glyph of a chart's font decoded to other characters by each engine
                # leaves a character unmatched: what is marked is still exactly what
                # matched, and that is nearly all of the chunk.
                ok = got == want or sorted(got) == sorted(want) or (
                    sorted(got) == sorted(marked)
                    and (absent or len(marked) >= 0.98 * len(want))
                ) or _read_differently(chars, mapping, picked, rects)
                if not ok:
                    problems.append(f"{name} p{page} chunk {c.index}: {want[:60]!r} / {got[:60]!r}")
    finally:
        pdf.close()
    return checked, problems


@pytest.mark.slow
def test_marked_text_is_the_chunk_on_the_sample_pdfs() -> None:
    need_shared()
    total, problems = 0, []
    for path in sorted(SAMPLES.glob("*.pdf")):
        if path.name in NOT_CHECKED:
            continue
        try:
            n, bad = _check_file(path.name, path.read_bytes())
        except RagError:  # files the loader rejects (scans, a password) have no chunks
            continue
        total += n
        if len(bad) > TOLERANCE.get(path.name, 0.0) * n:
            problems += bad
    assert total > 150  # chunks of 150 words
    assert not problems, problems[:5]


@pytest.mark.slow
def test_marked_text_is_the_chunk_on_sec_filings_with_tables() -> None:
    need_shared()
    total, problems = 0, []
    for name in ("2022 Q3 AAPL.pdf", "2023 Q1 MSFT.pdf"):
        n, bad = _check_file(name, (SEC / name).read_bytes())
        total += n
        problems += bad
    assert total > 50
    assert not problems, problems[:5]


def _variant(page_path: Path, *, rotate: int = 0, crop: bool = False, page_index: int = 0) -> bytes:
    writer = PdfWriter()
    page = PdfReader(page_path).pages[page_index]
    if rotate:
        page.rotate(rotate)
    if crop:
        box = page.mediabox
        w, h = float(box.width), float(box.height)
        page.cropbox = RectangleObject((w * 0.05, h * 0.1, w * 0.95, h * 0.9))
    writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# pdfium finds lines in the shown orientation: read turned, a page's columns come out
# interleaved (`Pdf.chars` reads them unturned, which these cases check).
@pytest.mark.parametrize(
    "rotate,crop", [(90, False), (180, False), (270, False), (0, True), (90, True)]
)
def test_marked_text_on_rotated_and_cropped_pages(rotate: int, crop: bool) -> None:
    need_shared()
    data = _variant(SAMPLES / "tracemonkey.pdf", rotate=rotate, crop=crop)
    n, problems = _check_file("multicolumn-variant.pdf", data)
    assert n >= 3
    assert not problems, problems[:3]


def test_bands_stay_within_the_shown_page_when_rotated() -> None:
    need_shared()
    pdf = Pdf(_variant(SAMPLES / "multicolumn.pdf", rotate=270), None)
    try:
        chars = pdf.chars(0)
        width, height = chars.width, chars.height
    finally:
        pdf.close()
    assert width > height  # a portrait page turned on its side
    boxes = [b for b in chars.boxes if b is not None]
    assert boxes and all(0 <= b[0] <= b[2] <= 1 and 0 <= b[1] <= b[3] <= 1 for b in boxes)
    # Text lines of a page turned by 270 degrees run up the shown page.
    first = boxes[:20]
    assert first[-1][1] < first[0][1]


def test_alignment_survives_ligatures_hyphens_and_reordering() -> None:
    source = "The eﬃcient com-\npiler. Second column text here."
    target = "Second column text here.\r\nThe efficient com\x02piler."
    m = align(source, target)
    for i, ch in enumerate(source):
        if ch.isspace():
            continue
        assert m[i] >= 0, (i, ch)
        assert _norm(target[m[i]]) == _norm(ch)[:1] or ch == "ﬃ"


def _app(tmp_path: Path, **changes: object) -> DocChat:
    settings = Settings(data_dir=tmp_path / "data", min_score=0.0).with_(**changes)
    app = DocChat.open(settings, embedder=HashEmbedder())
    app.ensure_collection()
    return app


def test_a_source_opens_on_its_page_marked_cached_and_dropped_with_its_document(
    tmp_path: Path,
) -> None:
    need_shared()
    app = _app(tmp_path)
    [result] = app.ingest_paths([SAMPLES / "tracemonkey.pdf"])
    assert result.status == "indexed"
    doc = app.documents()[0]
    chunk = next(c for c in app.chunks(doc.doc_id) if c.page == 3)
    view = app.page_view(doc.doc_id, 1, chunk=chunk.index, sentence=(0, 40))
    assert view.page == 3 and view.pages == 14 and view.chunk == chunk.index
    assert view.boxes and view.sentence_boxes and not view.cached
    image = Image.open(io.BytesIO(view.png))
    assert image.width == round(612 * app.settings.page_view_dpi / 72)
    again = app.page_view(doc.doc_id, 3, chunk=chunk.index, sentence=(0, 40))
    assert again.cached and again.png == view.png
    assert (again.boxes, again.sentence_boxes) == (view.boxes, view.sentence_boxes)
    alone = app.page_view(doc.doc_id, 4)
    assert alone.chunk is None and not alone.boxes and alone.png != view.png
    with pytest.raises(DocumentNotFoundError):
        app.page_view(doc.doc_id, 1, chunk=10_000)
    with pytest.raises(Exception, match="no page 15"):
        app.page_view(doc.doc_id, 15)
    folder = app.services.views.page_views.dir / doc.doc_id
    assert any(folder.iterdir())
    app.delete_document(doc.doc_id)
    assert not folder.exists()


def test_the_page_cache_stays_within_its_bound(tmp_path: Path) -> None:
    need_shared()
    app = _app(tmp_path, page_cache_mb=0.6)  # about one page image
    app.ingest_paths([SAMPLES / "tracemonkey.pdf"])
    doc = app.documents()[0]
    for page in range(1, 6):
        app.page_view(doc.doc_id, page)
    # The bound, plus the last one.
    assert app.services.views.page_views.disk_bytes() <= 600_000 + 400_000


def test_text_sources_show_the_text_around_them_inert(tmp_path: Path) -> None:
    app = _app(tmp_path, chunk_tokens=20, chunk_overlap=0)
    paras = [f"Paragraph {k} says <b>bold</b> [x](http://evil.example) {k}." for k in range(8)]
    app.ingest("notes.md", "\n\n".join(paras).encode())
    chunks = app.chunks("notes.md")
    middle = chunks[len(chunks) // 2]
    view = app.text_view(middle, sentence=(0, 9))
    assert view.chunk == middle.text and view.before and view.after
    html = text_view_html(view)
    assert "<b>" not in html and "&lt;b&gt;" in html and "<a " not in html
    assert html.count("<mark") == 2
    code = "\n".join(f"def f{k}():\n    return {k}\n" for k in range(30))
    app.ingest("mod.py", code.encode())
    c = app.chunks("mod.py")[3]
    around = app.text_view(c)
    assert around.first_line is not None and around.first_line <= (c.line_start or 0)
    assert "<pre" in text_view_html(around)


def test_citations_link_to_their_sources_only() -> None:
    answer = safe_markdown("Yes [1]. See [2, 3] and [7].")
    md = link_citations(answer, lambda n: f"s-{n}" if n < 4 else None)
    assert "[1](#s-1)" in md and "[2](#s-2), [3](#s-3)" in md
    assert "(#s-7)" not in md and "7" in md
    assert TextView("a", "b", "c").first_line is None
