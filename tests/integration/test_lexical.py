"""BM25 search, its persistence, keeping it in step with the store, and the fusion."""

from __future__ import annotations

from rag import DocChat
from tests.fixtures.fakes import HashEmbedder

CATS = b"Cats sleep sixteen hours a day. Cats eat fish and mice when they are hungry.\n"
DOGS = b"Dogs bark at strangers. Dogs love long walks in the park every morning.\n"
BIRDS = b"Birds migrate south in winter. Some birds infect others with avian influenza.\n"


def test_kept_in_step_with_the_store(app: DocChat) -> None:
    cats = app.ingest("cats.txt", CATS)
    app.ingest("dogs.txt", DOGS)
    key = app.services.store.collection_key("default")
    res = app.services.lexical.search(app.collection(), "fish mice", 5)
    assert res.top and res.top[0][0].startswith(cats.doc_id)
    assert (app.services.lexical.root / key / "lexical.npz").is_file()  # persisted after a search

    app.delete_document("cats.txt")
    assert app.services.lexical.search(app.collection(), "fish mice", 5).top == []

    # A fresh engine on the same data dir loads the file and catches up with the store.
    app.ingest("birds.txt", BIRDS)
    fresh = DocChat.open(app.settings, embedder=HashEmbedder(), store=app.services.store)
    assert fresh.services.lexical.search(fresh.collection(), "infections", 5).top

    # A write the engine did not make (another process, in server mode) is caught
    # by the version check before a search (tests/integration/test_lexical_versions.py).
    fresh.ingest("more.txt", b"Zebras graze on the savanna.\n")
    assert app.services.lexical.search(app.collection(), "zebras savanna", 5).top

    app.rename_collection("default", "animals")
    assert app.services.lexical.search(app.collection("animals"), "strangers", 5).top
    app.delete_collection("animals")
    assert not (app.services.lexical.root / key).exists()


def test_hybrid_search_finds_keywords_and_respects_filters(app: DocChat) -> None:
    cats = app.ingest("cats.txt", CATS)
    dogs = app.ingest("dogs.txt", DOGS)
    app.ingest("birds.txt", BIRDS)
    _, hits = app.search("Which animals bark at strangers?", hybrid=True, top_k=3)
    assert hits[0].chunk.doc_id == dogs.doc_id
    assert hits[0].lexical_score and hits[0].lexical_score > 0
    assert 0.0 <= hits[-1].score <= hits[0].score <= 1.0
    _, hits = app.search("bark at strangers", hybrid=True, doc_ids=[cats.doc_id], min_score=-1)
    assert {h.chunk.doc_id for h in hits} == {cats.doc_id}
    _, dense = app.search("bark at strangers", hybrid=False)
    assert dense[0].chunk.doc_id == dogs.doc_id and dense[0].lexical_score is None

