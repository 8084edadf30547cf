"""Search and retrieve through a DocChat take the same options (moved from the unit
models test: it needs an engine, hence Chroma)."""

from __future__ import annotations

from rag import DocChat


def test_search_and_retrieve_take_the_same_options(app: DocChat) -> None:
    app.ingest("cats.md", b"# Cats\n\nCats eat fish and mice.\n")
    app.ingest("dogs.md", b"# Dogs\n\nDogs bark at strangers.\n")
    for hybrid in (True, False):
        _, hits = app.search("what do cats eat", hybrid=hybrid, dense_weight=1.0, top_k=1)
        r = app.retrieve("what do cats eat", hybrid=hybrid, dense_weight=1.0, top_k=1)
        assert [h.chunk.id for h in hits] == [s.chunk.id for s in r.sources]
    options = app.services.answers.options(top_k=1, hybrid=False)
    assert app.search("dogs bark", options=options)[1][0].chunk.file == "dogs.md"
    assert app.retrieve("dogs bark", options=options).sources[0].chunk.file == "dogs.md"
