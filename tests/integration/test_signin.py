"""The front door (`rag/team/signin.py`): signed session cookies, the first administrator,
OIDC identities, the administrators' account management, per-user conversations."""

from __future__ import annotations

from pathlib import Path

from rag import DocChat, Settings
from rag.team.access import LOCAL, User
from tests.fixtures.fakes import HashEmbedder

CATS = b"# Cats\n\nCats sleep sixteen hours a day.\n"


def test_conversations_are_per_user(tmp_path: Path) -> None:
    app = DocChat.open(Settings(data_dir=tmp_path, min_score=0.0), embedder=HashEmbedder())
    app.ingest("cats.md", CATS)
    ann = app.as_user(User("u-ann", "ann", admin=True))
    bob = app.as_user(User("u-bob", "bob", admin=True))
    ann.chat_failed("How long do cats sleep?", "no LLM")  # a saved turn
    assert len(ann.conversations.load("default").turns) == 1
    assert not bob.conversations.load("default").turns
    assert not app.conversations.load("default").turns  # single-user mode's own
    bob.chat_failed("Do cats sleep?", "no LLM")
    app.rename_collection("default", "pets")
    assert len(ann.conversations.load("pets").turns) == 1
    assert len(bob.conversations.load("pets").turns) == 1
    app.delete_collection("pets")
    assert not ann.conversations.load("pets").turns and not bob.conversations.load("pets").turns
    assert app.as_user(LOCAL).conversations.owner == "local"
