from __future__ import annotations

import itertools

import pytest

from rag import Block, ConfigError, LoadedDocument, split
from rag.ingest.splitting import check_sizes, windows
from tests.fixtures.fakes import HashEmbedder

EMB = HashEmbedder()


def doc(texts: tuple[str, ...], blocks: tuple[Block, ...], kind: str = "pdf") -> LoadedDocument:
    return LoadedDocument(doc_id="d" * 64, name="x.pdf", kind=kind, texts=texts, blocks=blocks)


def test_chunks_are_exact_slices_and_never_cross_pages() -> None:
    p1 = " ".join(f"Sentence {i} on page one." for i in range(80))
    p2 = "Short page two."
    d = doc((p1, p2), (Block(0, len(p1), page=1, section="Intro"), Block(0, len(p2), page=2)))
    chunks = split(d, EMB.token_spans, chunk_tokens=50, overlap=10)
    assert len(chunks) > 3
    for c in chunks:
        page_text = d.texts[c.page - 1]
        assert c.text == page_text[c.start : c.end]
        assert c.tokens <= 50
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[-1].page == 2 and chunks[-1].text == p2
    assert chunks[0].section == "Intro"


def test_windows_overlap_and_end_on_sentences() -> None:
    text = " ".join(f"This is sentence number {i}." for i in range(40))
    spans = EMB.token_spans(text)
    ws = windows(text, spans, 30, 8)
    assert ws[0][0] == 0 and ws[-1][1] == len(text)
    for (a1, b1, _), (a2, _, _) in itertools.pairwise(ws):
        assert a2 < b1  # overlap
        assert text[b1 - 1] == "."  # ends at a sentence
        assert a1 < a2  # progress


def test_sections_are_not_crossed() -> None:
    t = "# A\nalpha text here.\n# B\nbeta text here."
    d = doc((t,), (Block(0, 20, section="A"), Block(21, len(t), section="B")), kind="markdown")
    chunks = split(d, EMB.token_spans, chunk_tokens=100, overlap=10)
    assert [c.section for c in chunks] == ["A", "B"]


def test_code_line_ranges() -> None:
    t = "import os\n\n\ndef f():\n    return 1\n\n\nclass C:\n    x = 1\n    y = 2\n"
    blocks = (
        Block(0, 9, section="module", line_start=1, line_end=1),
        Block(12, 32, section="def f", line_start=4, line_end=5),
        Block(35, len(t) - 1, section="class C", line_start=8, line_end=10),
    )
    d = doc((t,), blocks, kind="code")
    chunks = split(d, EMB.token_spans, chunk_tokens=100, overlap=0)
    assert [(c.line_start, c.line_end) for c in chunks] == [(1, 1), (4, 5), (8, 10)]


def test_sizes_checked_against_model() -> None:
    check_sizes(200, 40, 254)
    with pytest.raises(ConfigError, match="more than the embedding model reads"):
        check_sizes(300, 40, 254)
    with pytest.raises(ConfigError):
        check_sizes(100, 80, 254)
