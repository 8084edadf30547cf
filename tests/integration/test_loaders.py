"""Loaders: every file type, the shared PDF corpus, encodings and hostile input."""

from __future__ import annotations

import contextlib
import hashlib
import io
import random
import zlib
from functools import cache
from pathlib import Path

import pytest
from pypdf import PdfReader

from rag.core.errors import (
    ExtractionError,
    NoTextError,
    PasswordRequiredError,
    RagError,
    UnsupportedFileError,
    WrongPasswordError,
)
from rag.core.models import LoadedDocument
from rag.ingest import layout, pdf
from rag.ingest.loaders import SUPPORTED_EXTENSIONS, load, load_path
from rag.ingest.text import decode_text
from tests.fixtures.documents import check_blocks
from tests.fixtures.paths import need, need_shared

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
PDFS = DATA / "pdfs"
SAMPLES = PDFS / "sample-files"
BROKEN = PDFS / "broken"
ALL_PDFS = sorted(PDFS.glob("*/*.pdf")) if PDFS.is_dir() else []


@cache
def load_cached(path: Path) -> LoadedDocument:
    return load_path(path)


# --- the shared PDF corpus -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ALL_PDFS or [None],
    ids=lambda p: f"{p.parent.name}/{p.name}" if p else "none",
)  # fmt: skip
def test_every_pdf_loads_or_raises_a_rag_error(path: Path | None) -> None:
    if path is None:
        need_shared()  # fails in CI, skips elsewhere
        return
    try:
        doc = load_cached(path)
    except RagError as e:
        assert str(e)
        return
    assert doc.kind == "pdf" and doc.name == path.name
    assert doc.doc_id == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(doc.texts) == doc.pages
    check_blocks(doc)
    pages_with_text = {b.page for b in doc.blocks}
    for n, text in enumerate(doc.texts, 1):
        assert (n in pages_with_text) == bool(text.strip())


@pytest.mark.parametrize("name", ["tracemonkey.pdf", "pdflatex-outline.pdf", "habibi.pdf"])
def test_pdf_texts_are_exactly_pypdfs(name: str) -> None:
    """On pages without tables a page's text is pypdf's, less the running header and
    footer lines (pages with tables carry them as Markdown, see test_tables.py); an
    outside checker finds every block at its offsets in that text."""
    path = need(SAMPLES / name)
    doc = load_cached(path)
    reader = PdfReader(path)
    assert len(doc.texts) == len(reader.pages)
    raw = [reader.pages[p].extract_text() for p in range(len(reader.pages))]
    running = layout.running_lines([t.split("\n") for t in raw])
    expected = ["\n".join(layout.drop_running(t.split("\n"), running)[0]) for t in raw]
    for p, text in enumerate(doc.texts, 1):
        assert "|---|" not in text  # these are text documents: no page became a table
        assert text == expected[p - 1]
    for b in doc.blocks:  # what an outside checker does with a chunk's offsets
        assert expected[b.page - 1][b.start : b.end] == doc.text_of(b)


def test_tracemonkey_has_14_pages() -> None:
    doc = load_cached(need(SAMPLES / "tracemonkey.pdf"))
    assert doc.pages == 14 and {b.page for b in doc.blocks} == set(range(1, 15))


def test_outline_gives_sections() -> None:
    doc = load_cached(need(SAMPLES / "pdflatex-outline.pdf"))
    assert {"Foo", "Bar", "Baz"} <= {b.section for b in doc.blocks}
    bar = [b for b in doc.blocks if doc.text_of(b).startswith("2 Bar\n")]
    assert len(bar) == 1 and bar[0].section == "Bar" and bar[0].page == 2


def test_nested_outline_gives_paths() -> None:
    doc = load_cached(need(SAMPLES / "GeoTopo-komprimiert.pdf"))
    assert doc.title == "Geometrie und Topologie"
    assert any(" > " in b.section for b in doc.blocks)


def test_password_protected_pdf() -> None:
    data = need(SAMPLES / "libreoffice-writer-password.pdf").read_bytes()
    with pytest.raises(PasswordRequiredError, match="password required"):
        load("secret.pdf", data)
    with pytest.raises(WrongPasswordError, match=r"wrong password for secret\.pdf"):
        load("secret.pdf", data, password="nope")
    doc = load("secret.pdf", data, password="openpassword")
    assert doc.blocks and "".join(doc.texts).strip()


def test_aes_protected_pdf() -> None:
    data = need(BROKEN / "issue6010_1.pdf").read_bytes()
    with pytest.raises(PasswordRequiredError):
        load("issue6010_1.pdf", data)
    with pytest.raises(WrongPasswordError):
        load("issue6010_1.pdf", data, password="wrong")
    try:
        doc = load("issue6010_1.pdf", data, password="abc")
    except NoTextError:
        return  # opened; the page just has no text layer
    check_blocks(doc)


def test_empty_user_password_opens_without_asking() -> None:
    data = need(BROKEN / "empty_protected.pdf").read_bytes()
    # It opens with the empty password; its only page is blank, so: no text (not "password").
    with pytest.raises(NoTextError, match=r"no extractable text \(scanned\?\)"):
        load("empty_protected.pdf", data)


def test_textless_pdfs() -> None:
    with pytest.raises(NoTextError, match=r"no extractable text \(scanned\?\)"):
        load_cached(need(SAMPLES / "cmyk-image.pdf"))
    doc = load_cached(need(SAMPLES / "imagemagick-images.pdf"))
    # Pages 4 and 5 have no text layer, and like every page of this file they are 3.84
    # points square: too small for OCR (which read a "1" from the smiley's nose).
    # The other pages only say "Background", a running line: it is the context, and
    # those pages keep it (dropped, they would read as scanned).
    assert not any(b.ocr for b in doc.blocks)
    assert all(doc.texts[b.page - 1].strip() == "Background" for b in doc.blocks)
    assert doc.context == "Background"
    too_small = "no extractable text (scanned?), and too small for OCR"
    assert f"page 4: {too_small}" in doc.warnings
    assert f"page 5: {too_small}" in doc.warnings
    try:
        scan = load_cached(need(BROKEN / "scan-bad.pdf"))
    except NoTextError:
        return
    check_blocks(scan)


def _pdf(content: bytes, filters: str = "") -> bytes:
    """A one-page PDF with the given content stream and correct xref offsets."""
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} {filters}>>\nstream\n".encode() + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = io.BytesIO(), []
    out.write(b"%PDF-1.4\n")
    for i, body in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(f"{i} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode())
    out.write(b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets))
    out.write(f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
              .encode())  # fmt: skip
    return out.getvalue()


def test_generated_pdf_and_page_text_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _pdf(b"BT /F1 12 Tf 72 720 Td (Hello generated world) Tj ET")
    doc = load("gen.pdf", data)
    assert doc.texts == (PdfReader(io.BytesIO(data)).pages[0].extract_text(),)
    assert "Hello generated world" in doc.text_of(doc.blocks[0])
    monkeypatch.setattr(pdf, "MAX_PAGE_CHARS", 10)
    with pytest.raises(ExtractionError, match="page 1"):
        load("gen.pdf", data)


def test_decompression_bomb_is_refused() -> None:
    # ~80 KB that inflates to 100 MB: above pypdf's 75 MB FlateDecode output limit.
    bomb = zlib.compress(b" " * 100_000_000, 9)
    with pytest.raises(ExtractionError, match="not a readable PDF"):
        load("bomb.pdf", _pdf(bomb, "/Filter /FlateDecode "))


@pytest.mark.parametrize(
    "data",
    [
        b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 8,
        b"%PDF-1.7\n" + b"garbage " * 100,
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 1 0 R >> endobj\ntrailer << /Root 1 0 R >>",
        b"%PDF-" + b"[" * 50_000,
        b"%PDF-1.4\n" + b"<<" * 20_000,
    ],
)
def test_hostile_pdfs_raise_extraction_errors(data: bytes) -> None:
    with pytest.raises((ExtractionError, NoTextError)):
        load("x.pdf", data)


def test_not_a_pdf() -> None:
    with pytest.raises(ExtractionError, match="not a PDF"):
        load("elf.pdf", b"\x7fELF" + bytes(2000))


# --- Markdown, HTML, DOCX ------------------------------------------------------------------


def test_markdown_heading_paths() -> None:
    text = (
        "Preface text.\n\n# Guide\nIntro.\n\n## Install\nSteps.\n\n### Linux ###\napt\n"
        "```sh\n# not a heading\n```\n\n## Use\nRun it.\n"
    )
    doc = load("guide.md", text.encode())
    check_blocks(doc)
    assert doc.kind == "markdown" and doc.title == "Guide" and doc.texts == (text,)
    sections = [b.section for b in doc.blocks]
    assert sections == ["", "Guide", "Guide > Install", "Guide > Install > Linux", "Guide > Use"]
    linux = doc.text_of(doc.blocks[3])
    assert linux.startswith("### Linux") and "# not a heading" in linux


def test_markdown_hostile_nesting_and_many_headings() -> None:
    quotes = ">" * 5000 + " deep\n"
    doc = load("q.md", quotes.encode())
    assert doc.text_of(doc.blocks[0]).endswith("deep")
    many = "".join(f"{'#' * (i % 6 + 1)} H{i}\ntext {i}\n" for i in range(10_000))
    doc = load("many.md", many.encode())
    assert len(doc.blocks) == 10_000
    assert doc.blocks[5].section == "H0 > H1 > H2 > H3 > H4 > H5"


HTML = b"""<!doctype html><html><head><meta charset="utf-8"><title> My  Post </title>
<style>body{color:red}</style><script>var secret = 1;</script></head>
<body><nav>Home | About</nav><header>Site header</header>
<main><h1>Big <em>news</em></h1><p>First   paragraph
with a line break.</p><div hidden>hidden text</div><span aria-hidden="true">icon</span>
<h2>Details</h2><ul><li>one</li><li>two</li></ul>
<table><tr><td>a</td><td>b</td></tr></table><pre>x = 1
    y = 2</pre><noscript>enable js</noscript><form><button>Send</button></form></main>
<footer>Copyright</footer></body></html>"""


def test_html_visible_text_only() -> None:
    doc = load("post.html", HTML)
    check_blocks(doc)
    text = doc.texts[0]
    assert doc.kind == "html" and doc.title == "My Post"
    for gone in ("secret", "color:red", "Home", "Site header", "hidden text", "icon",
                 "enable js", "Send", "Copyright", "My Post"):  # fmt: skip
        assert gone not in text
    assert text.startswith("Big news\nFirst paragraph with a line break.\nDetails\none\ntwo\n")
    assert "a | b" in text and "x = 1\n    y = 2" in text
    assert [b.section for b in doc.blocks] == ["Big news", "Big news > Details"]


def test_html_charset_and_deep_nesting() -> None:
    latin = '<html><head><meta charset="iso-8859-1"></head><body><p>café</p></body></html>'
    assert "café" in load("l.htm", latin.encode("latin-1")).texts[0]
    deep = "<div>" * 20_000 + "deep text" + "</div>" * 20_000
    assert "deep text" in load("deep.html", deep.encode()).texts[0]
    with pytest.raises(NoTextError):
        load("blank.html", b"<html><script>x()</script></html>")


def test_docx_paragraphs_headings_and_tables() -> None:
    docx = pytest.importorskip("docx")
    d = docx.Document()
    d.core_properties.title = "Handbook"
    d.add_paragraph("Before any heading.")
    d.add_heading("Setup", level=1)
    d.add_paragraph("Install it.")
    d.add_heading("Linux", level=2)
    d.add_paragraph("Use apt.")
    table = d.add_table(rows=1, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "cell one", "cell two"
    d.add_heading("Usage", level=1)
    d.add_paragraph("Run it.")
    buf = io.BytesIO()
    d.save(buf)
    doc = load("hand.docx", buf.getvalue())
    check_blocks(doc)
    assert doc.kind == "docx" and doc.title == "Handbook"
    assert [b.section for b in doc.blocks] == ["", "Setup", "Setup > Linux", "Usage"]
    assert "Use apt.\ncell one\ncell two" in doc.text_of(doc.blocks[2])
    with pytest.raises(ExtractionError, match="not a readable Word document"):
        load("bad.docx", b"PK\x03\x04 not really a zip")


# --- code ---------------------------------------------------------------------------------


PY = '''"""Module doc."""
import os

X = 1


@decorator
def load(path):
    return os.path.basename(path)


class Store:
    def get(self):
        return X


async def main():
    pass

print(load("x"))
'''


def test_python_split_by_def_and_class() -> None:
    doc = load("app.py", PY.encode())
    check_blocks(doc)
    got = [(b.section, b.line_start, b.line_end) for b in doc.blocks]
    assert got == [
        ("module", 1, 4),
        ("def load", 7, 9),
        ("class Store", 12, 14),
        ("async def main", 17, 18),
        ("module", 20, 20),
    ]
    assert doc.text_of(doc.blocks[1]).startswith("@decorator\ndef load")


def test_python_hostile_or_broken_falls_back() -> None:
    nested = "x = " + "(" * 1000 + "1" + ")" * 1000 + "\n\ndef f():\n    pass\n"
    doc = load("nested.py", nested.encode())
    check_blocks(doc)
    broken = "def f(:\n    pass\n\ndef g():\n    return 1\n"
    doc = load("broken.py", broken.encode())
    check_blocks(doc)
    assert [b.section for b in doc.blocks] == ["def f(:", "def g():"]


JS = """import a from "a";
import b from "b";

// Adds numbers.
function add(x, y) {
  return x + y;
}

export class Thing {
  constructor() {}
}
"""


def test_javascript_top_level_blocks() -> None:
    doc = load("thing.js", JS.encode())
    check_blocks(doc)
    got = [(b.section, b.line_start, b.line_end) for b in doc.blocks]
    assert got == [
        ('import a from "a";', 1, 2),
        ("function add(x, y) {", 4, 7),
        ("export class Thing {", 9, 11),
    ]


# --- encodings, rejections, edge cases ------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        "\ufeffhéllo wörld\r\nline 2".encode(),
        "héllo wörld\r\nline 2".encode("utf-16"),  # the codec writes the BOM
        "\ufeffhéllo wörld\r\nline 2".encode("utf-16-be"),
        "héllo wörld\r\nline 2".encode("utf-16-le"),
        "héllo wörld\r\nline 2".encode("utf-16-be"),
        "héllo wörld\r\nline 2".encode("latin-1"),
        "héllo wörld\r\nline 2".encode("utf-32"),
    ],
)
def test_decode_text(data: bytes) -> None:
    assert decode_text(data) == "héllo wörld\nline 2"
    doc = load("notes.txt", data)
    assert doc.texts == ("héllo wörld\nline 2",) and doc.kind == "text"


def test_cp1252_text() -> None:
    assert decode_text("“quoted” – €5".encode("cp1252")) == "“quoted” – €5"


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("blob.txt", bytes(range(256)) * 4, UnsupportedFileError),
        ("blob.py", b"\x00\x01\x02\x03binary", UnsupportedFileError),
        ("elf.pdf", b"\x7fELF\x02\x01\x01\x00" + bytes(500), ExtractionError),
        ("data.xyz", b"hello", UnsupportedFileError),
        ("README", b"hello", UnsupportedFileError),
        ("empty.txt", b"", NoTextError),
        ("empty.pdf", b"", NoTextError),
        ("empty.docx", b"", NoTextError),
        ("empty.md", b"", NoTextError),
        ("space.md", b"  \n\t\n", NoTextError),
        ("bom.txt", b"\xef\xbb\xbf", NoTextError),
    ],
)
def test_rejections(name: str, data: bytes, error: type[RagError]) -> None:
    with pytest.raises(error) as info:
        load(name, data)
    assert name in str(info.value)


def test_unknown_extension_names_supported_types() -> None:
    with pytest.raises(UnsupportedFileError, match=r"\.pdf"):
        load("x.xyz", b"hi")


def test_text_file_and_load_path(tmp_path: Path) -> None:
    p = tmp_path / "Notes.TXT"
    p.write_bytes(b"  Hello there.\n\nSecond paragraph.  \n")
    doc = load_path(p)
    assert doc.name == "Notes.TXT" and doc.kind == "text" and doc.title == ""
    assert doc.doc_id == hashlib.sha256(p.read_bytes()).hexdigest()
    assert [doc.text_of(b) for b in doc.blocks] == ["Hello there.\n\nSecond paragraph."]
    with pytest.raises(RagError):
        load_path(tmp_path / "missing.txt")


def test_random_bytes_only_raise_rag_errors() -> None:
    rng = random.Random(1234)
    exts = sorted(SUPPORTED_EXTENSIONS)
    for i in range(300):
        data = rng.randbytes(rng.randint(1, 3000))
        if i % 3 == 0:
            data = b"%PDF-1.4\n" + data
        elif i % 3 == 1:
            data = bytes(b % 128 or 32 for b in data)  # text-like
        with contextlib.suppress(RagError):
            load(f"f{i}{exts[i % len(exts)]}", data)


def test_decompression_bomb_is_named_not_called_scanned() -> None:
    """pypdf stops inflating at its limit and returns no text; that must not read as a
    scanned page."""
    from tests.fixtures.pdfgen import flate_bomb

    with pytest.raises(ExtractionError) as e:
        load("bomb.pdf", flate_bomb(200))
    assert "decompression bomb" in str(e.value) and "scanned" not in str(e.value)
