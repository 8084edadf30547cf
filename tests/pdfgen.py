"""Handwritten PDFs for tests: tiny, exact, and as hostile as a test needs.

`make_pdf` writes a classic PDF (objects, xref table, trailer) from page content
streams, so a test controls every byte: white text, a content stream that inflates to
a gigabyte, or one page's operators repeated a hundred thousand times.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

_FONT = b"<< /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >>"


def _stream(data: bytes, *, compressed: bool) -> bytes:
    head = b"<< /Length %d%s >>" % (len(data), b" /Filter /FlateDecode" if compressed else b"")
    return head + b"\nstream\n" + data + b"\nendstream"


def assemble(objects: Sequence[bytes]) -> bytes:
    """A PDF whose object 1 is the catalog; objects are numbered from 1 in order."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def make_pdf(contents: Sequence[bytes], *, compress: bool = False) -> bytes:
    """One page per content stream, Helvetica available as /F1."""
    n = len(contents)
    kids = b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(n))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, n),
    ]
    for i, content in enumerate(contents):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources %s >>" % (4 + 2 * i, _FONT)
        )
        data = zlib.compress(content) if compress else content
        objects.append(_stream(data, compressed=compress))
    return assemble(objects)


def text_ops(lines: Sequence[str], *, gray: float = 0.0, y: int = 740) -> bytes:
    """Content operators that draw `lines` (ASCII) in a gray level (1.0 is white)."""
    out = [b"BT /F1 11 Tf %.2f g 72 %d Td 14 TL" % (gray, y)]
    for line in lines:
        safe = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        out.append(b"(%s) '" % safe.encode("latin-1", "replace"))
    out.append(b"ET")
    return b"\n".join(out)


def flate_bomb(inflated_mb: int = 1024) -> bytes:
    """One page whose content stream inflates to `inflated_mb` MB of zeros (~1 MB packed)."""
    packer = zlib.compressobj(9)
    zeros = bytes(1 << 20)
    packed = b"".join(packer.compress(zeros) for _ in range(inflated_mb)) + packer.flush()
    return assemble(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << >> >>",
            _stream(packed, compressed=True),
        ]
    )


def operator_bomb(pages: int = 200, stream_mb: int = 60) -> bytes:
    """`pages` pages sharing one stream of `stream_mb` MB of text operators (~200 KB packed).

    Every inflated stream stays under pypdf's own 75 MB limit, so only a time limit
    stops the extraction: about a minute per page in pure Python.
    """
    op = b"BT /F1 12 Tf 10 10 Td (x) Tj ET\n"
    packed = zlib.compress(op * (stream_mb * 1_000_000 // len(op)), 9)
    kids = b" ".join(b"%d 0 R" % (4 + i) for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
        _stream(packed, compressed=True),
    ]
    objects += [
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
        b"/Resources %s >>" % _FONT
    ] * pages
    return assemble(objects)
