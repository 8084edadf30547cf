"""Source code: one block per top-level function, class or statement group.

Python is split by its top-level def/class nodes (`ast`), with decorators kept on
their function; other languages (and Python that does not parse) by top-level blocks:
a non-indented line that does not close a block, with comments kept on the code below
them. Blocks carry their line numbers so citations can point at lines.

Left out: language-aware parsing of code other than Python, nested functions or
methods as blocks of their own.
"""

from __future__ import annotations

import ast
import bisect
import re

from rag.core.models import Block
from rag.ingest.blocks import Parsed, block

# Comment, decorator and preprocessor lines: they name nothing, the code after them does.
_ATTACH = ("//", "#", "/*", "*", "--", "@")
_CLOSERS = ("}", ")", "]", "{")  # a line starting so continues a block (or opens a K&R body)
_END_WORD = re.compile(r"(end|fi|done|esac)\b")


def parse(text: str, ext: str) -> Parsed:
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    ranges: list[tuple[int, int, str]] | None = None  # 1-based inclusive line ranges
    if ext == ".py":
        ranges = _python_ranges(text)
    if ranges is None:
        ranges = _generic_ranges(text)
    blocks = []
    for first, last, section in ranges:
        start = line_starts[first - 1]
        end = line_starts[last] - 1 if last < len(line_starts) else len(text)
        b = block(text, start, end, section=section)
        if b is not None:
            # Line numbers of the trimmed block, so they point at real code.
            line_start = bisect.bisect_right(line_starts, b.start)
            line_end = bisect.bisect_right(line_starts, b.end - 1)
            blocks.append(Block(b.start, b.end, section=section,
                                line_start=line_start, line_end=line_end))  # fmt: skip
    return text, blocks, ""


def _python_ranges(text: str) -> list[tuple[int, int, str]] | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # hostile or not-quite-Python: the generic splitter still works
    n_lines = text.count("\n") + 1
    ranges: list[tuple[int, int, str]] = []
    gap_start = 1
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            first = max(first, gap_start)
            last = max(node.end_lineno or node.lineno, first)
            if first > gap_start:
                ranges.append((gap_start, first - 1, "module"))
            kind = {ast.FunctionDef: "def", ast.AsyncFunctionDef: "async def"}.get(
                type(node), "class"
            )
            ranges.append((first, last, f"{kind} {node.name}"))
            gap_start = last + 1
    if gap_start <= n_lines:
        ranges.append((gap_start, n_lines, "module"))
    return ranges


def _generic_ranges(text: str) -> list[tuple[int, int, str]]:
    """Top-level blocks: each starts at a non-indented line that does not close a block.

    A line directly below a comment or an unfinished statement ("static int" above
    "main(void)") continues the block above it, so comments stay with their code.
    """
    lines = text.split("\n")
    starts: list[int] = []
    prev = ""
    for i, line in enumerate(lines):
        top = line.strip() and line[0] not in " \t" and not line.startswith(_CLOSERS)
        if top and not _END_WORD.match(line) and _ends_statement(prev):
            starts.append(i)
        prev = line
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    raw = [(s, (starts[k + 1] if k + 1 < len(starts) else len(lines)) - 1)
           for k, s in enumerate(starts)]  # fmt: skip

    def code_lines(first: int, last: int) -> list[str]:
        return [
            ln
            for ln in lines[first : last + 1]
            if ln.strip() and not ln.lstrip().startswith(_ATTACH)
        ]

    # Runs of one-line statements (imports, constants) become one block, not one each.
    merged: list[list[int]] = []
    for first, last in raw:
        small = len(code_lines(first, last)) <= 1
        if merged and small and merged[-1][2]:
            merged[-1][1] = last
        else:
            merged.append([first, last, int(small)])
    out = []
    for first, last, _ in merged:
        named = code_lines(first, last) or [ln for ln in lines[first : last + 1] if ln.strip()]
        section = named[0].strip()[:80].rstrip() if named else ""
        out.append((first + 1, last + 1, section))
    return out


def _ends_statement(prev: str) -> bool:
    """True when the line before leaves nothing open, so the next top-level line is new."""
    stripped = prev.strip()
    if not stripped or stripped.endswith((";", "}")) or _END_WORD.match(stripped):
        return True
    if prev[0] in " \t":  # back at column 0 after a body (Python, Ruby), unless a /* */ tail
        return not (stripped.startswith("*") or stripped.endswith("*/"))
    return prev.startswith(_CLOSERS[:3])
