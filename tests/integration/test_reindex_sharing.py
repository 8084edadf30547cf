"""Re-indexing leaves no sharing record behind for its temporary collection, and the
collection keeps its own (owner and shares) through the swap."""

from __future__ import annotations

from dataclasses import replace

from rag import DocChat, Settings
from rag.team.access import EDITOR, Sharing, User
from tests.fixtures.fakes import HashEmbedder

CATS = b"# Cats\n\nCats sleep sixteen hours a day. They purr when content.\n"


def test_reindexing_leaves_no_sharing_record_for_its_temporary_collection(
    settings: Settings,
) -> None:
    app = DocChat.open(replace(settings, auth="accounts"), embedder=HashEmbedder())
    try:
        ann, bob = User("u" + "a" * 24, "ann"), User("u" + "b" * 24, "bob")
        owner = app.as_user(ann)
        owner.ingest("cats.md", CATS, collection="notes")
        shared = Sharing(ann.id, editors=frozenset({bob.id}))
        owner.share("notes", shared)
        sharing = app.services.gate.sharing
        nothing = sharing.of("never-made")  # what no record reads as
        # An editor, not the owner, re-indexes: the temporary collection is not theirs.
        results = app.as_user(bob).reindex(collection="notes", chunk_tokens=64, chunk_overlap=8)
        assert [r.status for r in results] == ["indexed"]
        assert sharing.of("notes (re-indexing)") == nothing
        assert sharing.of("notes") == shared
        assert [d.name for d in app.as_user(bob).documents("notes")] == ["cats.md"]
        assert app.as_user(bob).role("notes") == EDITOR
        assert "notes (re-indexing)" not in app.services.store.collection_names()
    finally:
        app.close()
