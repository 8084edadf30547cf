"""Plain text and Markdown, and the decoding of every text format's bytes.

`decode_text` turns bytes into text with "\\n" newlines: BOMs, UTF-16 without a BOM,
UTF-8, cp1252, then latin-1; binary data is refused. Plain text is one block (the
splitter cuts it at sentence and line ends); Markdown is cut at ATX headings into
sections named by their heading path ("Install > Linux"), skipping fenced and
indented code.

Left out: Setext (underlined) Markdown headings, front matter, and any rendering of
Markdown (the stored text is the source).
"""

from __future__ import annotations

import codecs

from rag.core.errors import UnsupportedFileError
from rag.ingest.blocks import HeadingPath, Parsed, block, clean_title, segments

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CONTROL = frozenset(chr(c) for c in range(32)) - set("\t\n\r\f\v\x1b")


def decode_text(data: bytes) -> str:
    """The text in `data` with newlines as "\\n"; UnsupportedFileError for binary data.

    Order: BOM, UTF-16 without BOM (NUL pattern), NUL means binary, UTF-8, cp1252, latin-1.
    """
    text = None
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            # The BOM is strong evidence: a stray bad byte should not reject the file.
            text = data[len(bom) :].decode(encoding, errors="replace")
            break
    if text is None:
        text = _utf16_without_bom(data)
    if text is None:
        if b"\x00" in data[:8192]:
            raise UnsupportedFileError("looks like a binary file, not text")
        for encoding in ("utf-8", "cp1252"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            text = data.decode("latin-1")  # cannot fail: every byte is a character
    sample = text[:8192]
    if sample and sum(c in _CONTROL for c in sample) > len(sample) // 10:
        raise UnsupportedFileError("looks like a binary file, not text")
    # removeprefix: a second BOM (a file "converted" twice) is not text either.
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _utf16_without_bom(data: bytes) -> str | None:
    sample = data[:4096]
    if len(sample) < 2:
        return None
    even, odd = sample[0::2], sample[1::2]
    zero_even, zero_odd = even.count(0) / len(even), odd.count(0) / max(len(odd), 1)
    # ASCII-range text in UTF-16 has a NUL in every high byte and (almost) none elsewhere.
    if zero_odd > 0.3 and zero_even < 0.05:
        encoding = "utf-16-le"
    elif zero_even > 0.3 and zero_odd < 0.05:
        encoding = "utf-16-be"
    else:
        return None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text[:4096] else text


def parse_plain(text: str, ext: str) -> Parsed:
    # One block: the splitter cuts it into windows at sentence and line ends.
    return text, [b for b in [block(text, 0, len(text))] if b], ""


def parse_markdown(text: str, ext: str) -> Parsed:
    cuts: list[tuple[int, str]] = []
    path = HeadingPath()
    title = ""
    fence = ""  # the opening ``` or ~~~ run while inside fenced code
    offset = 0
    for line in text.split("\n"):
        start, offset = offset, offset + len(line) + 1
        stripped = line.lstrip(" ")
        if len(line) - len(stripped) > 3:  # indented code
            continue
        if fence:
            if stripped.startswith(fence) and not stripped.strip(fence[0]).strip():
                fence = ""
            continue
        if stripped.startswith(("```", "~~~")):
            char = stripped[0]
            fence = char * (len(stripped) - len(stripped.lstrip(char)))
            continue
        level = len(stripped) - len(stripped.lstrip("#"))
        rest = stripped[level:]
        if 1 <= level <= 6 and (not rest or rest[0] in " \t"):
            heading = rest.strip()
            # Closing hashes ("## Title ##") are not part of the title.
            if heading.endswith("#") and (" " + heading).rstrip("#").endswith((" ", "\t")):
                heading = heading.rstrip("#").strip()
            if not heading:
                continue  # a bare "#" names nothing
            cuts.append((start, path.push(level, heading)))
            if level == 1 and not title:
                title = clean_title(heading)
    return text, segments(text, cuts), title
