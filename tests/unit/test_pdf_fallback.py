"""The second PDF engine: what pypdf refuses, pdfium reads, and the document says so.

- a file pypdf cannot open at all (../shared/data/pdfs/broken/issue6069.pdf: a stream
  that ends early) is read with pdfium, with a warning naming pypdf's reason;
- a page pypdf fails on (a content stream under the legacy filter name /A85, which
  pypdf 7 refuses) is read by pdfium, with a page warning; the other pages stay pypdf's;
- the two SEC filings once rejected by pypdf's element-count limit
  ("LimitReachedError: Reached maximum array element count") load;
- what neither engine opens is still rejected with a clear reason.
"""

from __future__ import annotations

import base64

import pytest

from rag.core.errors import ExtractionError, RagError
from rag.ingest.loaders import load, load_path
from tests.fixtures.documents import check_blocks
from tests.fixtures.paths import BROKEN, SHARED, need
from tests.fixtures.pdfgen import _FONT, assemble, make_pdf, text_ops

SEC = SHARED / "sec-10-q" / "docs"
LINE = "The lighthouse keeper counts ships every evening."


def _two_pages_second_a85() -> bytes:
    """Two pages; the second's content stream is ASCII85 under the legacy name /A85."""
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R /Resources %s >>"
    first = text_ops(["Penguins huddle together through the antarctic winter."])
    packed = base64.a85encode(text_ops([LINE])) + b"~>"
    return assemble([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R 5 0 R] /Count 2 >>",
        page % (4, _FONT),
        b"<< /Length %d >>\nstream\n" % len(first) + first + b"\nendstream",
        page % (6, _FONT),
        b"<< /Length %d /Filter /A85 >>\nstream\n" % len(packed) + packed + b"\nendstream",
    ])  # fmt: skip


def test_file_pypdf_cannot_open_is_read_with_pdfium() -> None:
    path = need(BROKEN / "issue6069.pdf")
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    with pytest.raises(PyPdfError):  # the premise: pypdf refuses the file
        len(PdfReader(path, strict=False).pages)
    doc = load_path(path)
    check_blocks(doc)
    assert doc.texts[0].strip()
    assert any(
        w.startswith("read with pdfium: pypdf could not open the file (") for w in doc.warnings
    )


def test_page_pypdf_fails_on_is_read_with_pdfium() -> None:
    doc = load("a85.pdf", _two_pages_second_a85())
    check_blocks(doc)
    assert doc.pages == 2
    assert "Penguins huddle together" in doc.texts[0]
    assert LINE in " ".join(doc.texts[1].split())
    (warning,) = doc.warnings
    assert warning.startswith("page 2: read with pdfium (pypdf: ") and "/A85" in warning


def test_xref_offsets_that_lie_are_repaired() -> None:
    good = make_pdf([text_ops([LINE])])
    # Every object offset in the xref table off by 7 bytes.
    table = good.index(b"xref\n")
    head, tail = good[:table], good[table:]
    lines = tail.split(b"\n")
    for k, line in enumerate(lines):
        if line.endswith(b" 00000 n "):
            lines[k] = b"%010d 00000 n " % (int(line[:10]) + 7)
    doc = load("lying-xref.pdf", head + b"\n".join(lines))
    assert LINE in doc.texts[0]


@pytest.mark.parametrize("name", ["2023 Q1 MSFT.pdf", "2023 Q2 MSFT.pdf"])
def test_filings_once_over_the_element_limit_load(name: str) -> None:
    doc = load_path(need(SEC / name))
    check_blocks(doc)
    assert doc.pages > 30 and len({b.page for b in doc.blocks}) > 30
    assert not any("could not" in w or "pdfium" in w for w in doc.warnings), doc.warnings
    assert "microsoft" in "".join(doc.texts[:3]).lower()


@pytest.mark.parametrize("name", ["poppler-742-0-fuzzed.pdf", "bug1606566.pdf", "bug1782186.pdf"])
def test_what_neither_engine_opens_is_rejected_clearly(name: str) -> None:
    data = need(BROKEN / name).read_bytes()
    with pytest.raises(RagError) as e:
        load(name, data)
    message = str(e.value)
    assert message.startswith(name) and len(message) < 300 and "Traceback" not in message


def test_truncated_pdf_is_rejected() -> None:
    good = make_pdf([text_ops([LINE])])
    with pytest.raises(ExtractionError, match="not a readable PDF"):
        load("cut.pdf", good[: good.index(b"xref")])


def test_pdfium_can_be_the_first_reader() -> None:
    from dataclasses import replace

    from rag.core.errors import ConfigError
    from rag.core.settings import DEFAULT_READ, Settings
    from rag.ingest.pdfium import Pdf

    data = _two_pages_second_a85()
    doc = load("a85.pdf", data, options=replace(DEFAULT_READ, pdf_text="pdfium"))
    check_blocks(doc)
    pdf = Pdf(data, None)
    try:
        assert doc.texts == (pdf.text(0), pdf.text(1))
    finally:
        pdf.close()
    assert doc.warnings == ()  # pdfium reads the /A85 page: nothing fell back
    chosen = Settings.from_env({"DOCCHAT_PDF_TEXT": "pdfium"}, None).read_options()
    assert chosen.pdf_text == "pdfium"
    with pytest.raises(ConfigError, match="DOCCHAT_PDF_TEXT"):
        Settings.from_env({"DOCCHAT_PDF_TEXT": "mupdf"}, None).read_options()
