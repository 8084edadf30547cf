"""OCR: a scanned page (an image-only PDF) and the same page as a PNG are read, indexed and found.

The page is page 1 of ../shared/data/pdfs/sample-files/google-doc-document.pdf (the
Zen of Python and a small table), rendered by pdfium at `DPI`. Each file is read by
OCR once per module (through the extraction worker, as uploads are) and indexed once
with the real embedder; the tests share those results.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag import DocChat, Settings, Upload
from rag.core.errors import ConfigError, ExtractionError, NoTextError
from rag.core.models import IngestResult, LoadedDocument
from rag.core.settings import DEFAULT_READ
from rag.ingest import ocr
from rag.ingest.extract import extract
from rag.ingest.loaders import load
from tests.fixtures.documents import check_blocks
from tests.fixtures.paths import SAMPLES, need_shared

PAGE = SAMPLES / "google-doc-document.pdf"
DPI = 150  # the scan's resolution, and the one it is read at: a small page, a fast module
# OCR of this page took 10-210 s on the shared 2-core machine under load: the limit is
# generous here, as speed is never asserted in tests.
TIMEOUT = 900.0
OPTIONS = dataclasses.replace(DEFAULT_READ, ocr_dpi=DPI)
SENTENCE = "In the face of ambiguity, refuse the temptation to guess."


def _render(path: Path) -> Any:
    """Page 1 of `path` as a PIL image."""
    import pypdfium2 as pdfium
    from PIL import Image

    doc = pdfium.PdfDocument(path.read_bytes())
    try:
        bitmap = doc[0].render(scale=DPI / 72, rev_byteorder=True)
        return Image.fromarray(np.array(bitmap.to_numpy()[:, :, :3], copy=True))
    finally:
        doc.close()


@pytest.fixture(scope="module")
def scans() -> dict[str, bytes]:
    """{"scan.pdf": an image-only PDF of the page, "scan.png": the same page as a PNG}."""
    if not PAGE.exists():
        need_shared()
        pytest.fail(f"{PAGE} is missing from the shared data")
    image = _render(PAGE)
    png, pdf = io.BytesIO(), io.BytesIO()
    image.save(png, "PNG")
    image.save(pdf, "PDF", resolution=DPI)
    return {"scan.pdf": pdf.getvalue(), "scan.png": png.getvalue()}


@pytest.fixture(scope="module")
def read(scans: dict[str, bytes]) -> dict[str, tuple[LoadedDocument, list[tuple[str, int, int]]]]:
    """Each scan read through the extraction worker: (document, progress heard)."""
    out = {}
    for name, data in scans.items():
        heard: list[tuple[str, int, int]] = []
        doc = extract(
            name, data, timeout=TIMEOUT, options=OPTIONS, progress=lambda *p, h=heard: h.append(p)
        )
        out[name] = (doc, heard)
    return out


def test_the_scanned_pdf_has_no_text_layer(scans: dict[str, bytes]) -> None:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(scans["scan.pdf"]))
    assert len(reader.pages) == 1 and not reader.pages[0].extract_text().strip()


@pytest.mark.parametrize("name", ["scan.pdf", "scan.png"])
def test_scans_are_read_by_ocr(read: dict[str, Any], name: str) -> None:
    doc, heard = read[name]
    if doc.kind == "pdf":  # image blocks carry frame numbers, which check_blocks refuses
        check_blocks(doc)
    assert doc.pages == 1 and doc.blocks and all(b.ocr for b in doc.blocks)
    # Spaces aside: the recognizer drops some between words of JPEG-compressed scans
    # ("Explicitisbetterthanimplicit."), which benchmarks/ocr.py measures (cer_nospace).
    text = "".join(doc.texts[0].split())
    for line in ("Beautiful is better than ugly.", "Readability counts.", SENTENCE):
        assert "".join(line.split()) in text
    for b in doc.blocks:
        assert doc.text_of(b) == doc.texts[0][b.start : b.end]
    # Progress reaches the caller from the worker process: one OCR page of one.
    assert ("ocr", 1, 1) in heard


def test_scanned_pdf_page_warns_read_by_ocr(read: dict[str, Any]) -> None:
    doc, _ = read["scan.pdf"]
    assert doc.kind == "pdf" and "page 1: read by OCR" in doc.warnings


@pytest.fixture(scope="module")
def indexed(
    scans: dict[str, bytes], real_embedder: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DocChat, list[IngestResult]]]:
    """The two scans and two text-layer PDFs (as distractors) in one collection."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("ocr") / "data",
        min_score=0.0,
        ocr_dpi=DPI,
        extract_timeout=TIMEOUT,
    )
    chat = DocChat.open(settings, embedder=real_embedder)
    files = [Upload(name, data) for name, data in scans.items()]
    for other in ("crazyones-pdfa.pdf", "minimal-document.pdf"):
        files.append(Upload(other, (SAMPLES / other).read_bytes()))
    yield chat, chat.ingest_many(files)


def test_scans_are_indexed_and_found_first(indexed: tuple[DocChat, list[IngestResult]]) -> None:
    chat, results = indexed
    assert [r.status for r in results] == ["indexed"] * 4, [r.reason for r in results]
    by_file = {r.file: r for r in results}
    assert "page 1: read by OCR" in by_file["scan.pdf"].warnings
    _, hits = chat.search(SENTENCE, top_k=4)
    assert hits and hits[0].chunk.file in ("scan.pdf", "scan.png")
    for name in ("scan.pdf", "scan.png"):
        _, mine = chat.search(SENTENCE, top_k=1, doc_ids=[by_file[name].doc_id])
        assert mine and mine[0].chunk.page == 1 and mine[0].chunk.ocr
    top = hits[0].chunk
    # The sources the user sees say how the text was read.
    assert top.location == "page 1, read by OCR"
    texts = [h.chunk for h in hits if h.chunk.file.startswith("scan")]
    assert all(c.location == "page 1, read by OCR" for c in texts)


def test_a_scanned_source_opens_on_its_page_with_the_ocr_lines_marked(
    indexed: tuple[DocChat, list[IngestResult]],
) -> None:
    chat, results = indexed
    by_file = {r.file: r for r in results}
    for name in ("scan.pdf", "scan.png"):
        _, [hit] = chat.search(SENTENCE, top_k=1, doc_ids=[by_file[name].doc_id])
        c = hit.chunk
        view = chat.page_view(c.doc_id, 1, chunk=c.index, sentence=(0, 30))
        assert view.ocr and view.page == 1 and view.pages == 1
        assert view.boxes and view.sentence_boxes
        assert all(0 <= b[0] < b[2] <= 1 and 0 <= b[1] < b[3] <= 1 for b in view.boxes)
        # The sentence is inside the chunk's marks: the first band holds its start.
        first = view.boxes[0]
        s = view.sentence_boxes[0]
        assert first[0] - 0.01 <= s[0] and abs(first[1] - s[1]) < 0.01


def test_ocr_marks_are_the_characters_of_the_text(
    scans: dict[str, bytes], read: dict[str, Any]
) -> None:
    """The page view's OCR marks: the engine's character boxes, read again, pair up
    with the indexed text character for character (same engine, same resolution)."""
    from rag.ingest.image import frames
    from rag.ingest.ocr import read_image, text_of
    from rag.views.alignment import align
    from rag.views.marks import bands, ocr_chars, text_inside

    doc, _ = read["scan.png"]
    [image] = frames(scans["scan.png"])
    lines = read_image(image, char_boxes=True)
    assert text_of(lines) == doc.texts[0]  # the same text as at indexing
    assert sum(1 for line in lines if len(line.chars) == len(line.text)) >= len(lines) - 1
    chars = ocr_chars(lines, image.shape[1], image.shape[0])
    mapping = align(doc.texts[0], chars.text)
    start = doc.texts[0].index(SENTENCE[:20])
    end = start + len(SENTENCE)
    marked = text_inside(chars, bands(chars, [mapping[i] for i in range(start, end)]))
    assert "".join(marked.split()) == "".join(doc.texts[0][start:end].split())


def test_ocr_off_rejects_images_and_reports_scans_as_textless(
    scans: dict[str, bytes], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCCHAT_OCR", "false")
    monkeypatch.setenv("DOCCHAT_DATA_DIR", str(tmp_path / "data"))
    options = Settings.from_env().read_options()
    assert options.ocr is False
    with pytest.raises(
        NoTextError, match=r"scan\.png: an image is read by OCR, and OCR is turned off"
    ):
        load("scan.png", scans["scan.png"], options=options)
    with pytest.raises(
        NoTextError, match=r"no extractable text \(scanned\?\), and OCR is turned off"
    ):
        load("scan.pdf", scans["scan.pdf"], options=options)


def test_unknown_ocr_language_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="DOCCHAT_OCR_LANGUAGES"):
        ocr.check_languages(("en", "xx"))
    blank = np.full((32, 32, 3), 255, dtype=np.uint8)
    with pytest.raises(ConfigError):
        ocr.read_image(blank, ("klingon",))


def test_blank_image_is_no_text() -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (200, 100), "white").save(buf, "PNG")
    with pytest.raises(NoTextError, match="OCR found no text"):
        load("blank.png", buf.getvalue(), options=DEFAULT_READ)


def test_reading_order_merges_boxes_of_a_line_left_to_right() -> None:
    line = ocr.OcrLine
    boxes = [
        line("world", (120, 10, 200, 30), 0.9),
        line("second line", (10, 50, 150, 70), 0.9),
        line("Hello", (10, 12, 100, 32), 0.8),
    ]
    lines = ocr._reading_order(boxes)
    assert [x.text for x in lines] == ["Hello world", "second line"]
    assert lines[0].box == (10, 10, 200, 32) and lines[0].score == 0.8


def test_two_columns_are_read_one_after_the_other() -> None:
    line = ocr.OcrLine
    title = line("A Title Over Both Columns", (200, 0, 700, 30), 0.9)
    left = [line(f"left {k}", (0, 50 + 30 * k, 400, 70 + 30 * k), 0.9) for k in range(8)]
    right = [line(f"right {k}", (450, 52 + 30 * k, 850, 72 + 30 * k), 0.9) for k in range(8)]
    footer = line("A footnote across the page", (0, 400, 850, 420), 0.9)
    lines = ocr._reading_order([*right, footer, *left, title])
    assert [x.text for x in lines] == [
        title.text,
        *[x.text for x in left],
        *[x.text for x in right],
        footer.text,
    ]
    # One column whose lines cross the middle: read row by row, as before.
    prose = [line(f"prose {k}", (0, 30 * k, 850, 20 + 30 * k), 0.9) for k in range(12)]
    table = []
    for k in range(6):
        x, y = 450 * (k % 2), 400 + 15 * (k // 2)
        table.append(line(f"cell {k}", (x, y, x + 400, y + 10), 0.9))
    assert [x.text for x in ocr._reading_order(prose + table)] == [
        *[x.text for x in prose],
        "cell 0 cell 1",
        "cell 2 cell 3",
        "cell 4 cell 5",
    ]


@pytest.mark.parametrize("message", ["Traceback (most recent call last): bad_alloc", "boom"])
def test_engine_failure_is_a_clear_reason(
    scans: dict[str, bytes], monkeypatch: pytest.MonkeyPatch, message: str
) -> None:
    """onnxruntime's errors carry a traceback; under the worker's memory cap it fails to
    allocate. Either way the file is rejected with a short reason naming it."""

    def fail(*_: object) -> None:
        raise RuntimeError(message)

    monkeypatch.setattr(ocr, "read_image", fail)
    why = "OCR ran out of memory" if "alloc" in message else r"OCR failed \(RuntimeError\)"
    with pytest.raises(
        ExtractionError, match=rf"^scan\.pdf: not a readable PDF \(page 1: {why}\)$"
    ):
        load("scan.pdf", scans["scan.pdf"], options=OPTIONS)
    with pytest.raises(ExtractionError, match=rf"^scan\.png: {why} on page 1$"):
        load("scan.png", scans["scan.png"], options=OPTIONS)


def test_a_broken_image_is_rejected_with_a_message_for_people() -> None:
    from rag.core.errors import ExtractionError
    from rag.ingest.loaders import load

    expected = r"bad\.png: not a readable image \(unknown or broken"
    with pytest.raises(ExtractionError, match=expected):
        load("bad.png", b"\x89PNG not really" * 50)


def test_a_line_the_detector_missed_is_read_from_the_band_it_leaves() -> None:
    # At this resolution the detector skips one line of the page (ocr.py, `_in_gaps`);
    # the empty band it leaves is read again, and the line is back, in its place.
    if not PAGE.exists():
        need_shared()
        pytest.fail(f"{PAGE} is missing from the shared data")
    image = np.asarray(_render(PAGE))

    def squeezed(lines: list[ocr.OcrLine]) -> str:
        return "".join(ocr.text_of(lines).split())

    line = "Althoughthatwaymaynotbeobviousatfirstunlessyou'reDutch."
    assert line not in squeezed(ocr._recognize(image, False))
    text = squeezed(ocr.read_image(image))
    assert "obviousway" in text and text.index("obviousway") < text.index(line)
    assert text.index(line) < text.index("Nowis")
    assert text.count("Thereshouldbeone") == 1  # the neighbours' slivers are not added


def test_a_page_too_small_for_a_line_of_text_is_not_read_by_ocr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ImageMagick's sample PDFs have 3.84-point pages; OCR read noise ("1") from one."""
    from pypdf import PdfWriter

    read: list[tuple[int, ...]] = []

    def record(image: np.ndarray, *_: object) -> list[ocr.OcrLine]:
        read.append(image.shape)
        return []

    def pdf(*sides: float) -> bytes:
        writer, out = PdfWriter(), io.BytesIO()
        for side in sides:
            writer.add_blank_page(width=side, height=side)
        writer.write(out)
        return out.getvalue()

    monkeypatch.setattr(ocr, "read_image", record)
    with pytest.raises(NoTextError, match="OCR found none"):
        load("two.pdf", pdf(3.84, 100), options=OPTIONS)
    assert len(read) == 1 and min(read[0][:2]) > 100  # the 100-point page only
    with pytest.raises(NoTextError, match=r"its pages are too small for OCR \(under a quarter"):
        load("tiny.pdf", pdf(3.84), options=OPTIONS)
    assert len(read) == 1
