"""Collections: list, create, rename, delete, each as the acting user may.

A collection made by a signed-in user is theirs (`team/sharing.py`, by user id); one
made in single-user mode or on the command line is the administrators'. Renaming and
deleting one takes its sharing record, conversations, lexical index and page images
with it.

Left out: moving documents between collections (upload them again).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from rag.components.conversations import Conversations
from rag.components.lexical import Lexical
from rag.components.store import Store
from rag.core.errors import CollectionExistsError
from rag.core.models import CollectionInfo
from rag.core.settings import Settings
from rag.ingest.splitting import check_sizes
from rag.services.gate import Gate
from rag.services.resources import LazyEmbedder, WriteLocks
from rag.team.access import LOCAL, Sharing, User
from rag.views.page_view import PageViews


@dataclass(frozen=True)
class CollectionService:
    settings: Settings
    store: Store
    gate: Gate
    embedder: LazyEmbedder
    locks: WriteLocks
    lexical: Lexical
    conversations: Conversations
    page_views: PageViews

    def readable(self, user: User) -> list[CollectionInfo]:
        """The collections `user` may read."""
        return [c for c in self.store.list_collections() if self.gate.may(user, "read", c.name)]

    def names(self, user: User) -> list[str]:
        return [n for n in self.store.collection_names() if self.gate.may(user, "read", n)]

    def info(self, user: User, name: str | None) -> CollectionInfo:
        return self.store.collection_info(self.gate.open(user, name, "read"))

    def exists_elsewhere(self, user: User, name: str) -> bool:
        """Whether a collection of that name exists that `user` may not read (a name is
        unique across users)."""
        return self.store.has_collection(name) and not self.gate.may(user, "read", name)

    def default_for(self, user: User) -> str:
        """The collection `user` works on until they choose one: the settings' default
        when they may read it, else one named after them (with a number when another's
        collection has that name: a name is a label, a removed namesake's collection
        stays theirs, unseen)."""
        if self.gate.may(user, "read", self.settings.collection):
            return self.settings.collection
        for n in range(1, 100):
            name = user.name if n == 1 else f"{user.name}-{n}"
            if not self.exists_elsewhere(user, name):
                return name
        return self.settings.collection  # (each call on it then says what is refused)

    def create(
        self, user: User, name: str, chunk_tokens: int | None, chunk_overlap: int | None
    ) -> CollectionInfo:
        size = chunk_tokens if chunk_tokens is not None else self.settings.chunk_tokens
        overlap = chunk_overlap if chunk_overlap is not None else self.settings.chunk_overlap
        e = self.embedder.get()
        check_sizes(size, overlap, e.max_tokens)
        info = self.store.create_collection(
            name, model=e.name, dimension=e.dimension, chunk_tokens=size, chunk_overlap=overlap
        )
        # A signed-in user's collection is theirs; single-user mode's (and the command
        # line's) the administrators', so it stays theirs once sign-in is turned on.
        # Set either way: a record left by an earlier collection of that name goes.
        self.gate.sharing.set(info.name, Sharing("" if user.id == LOCAL.id else user.id))
        return info

    def ensure(self, user: User, name: str | None) -> CollectionInfo:
        """The collection, made first when it does not exist yet."""
        name = self.gate.name(name)
        with self.locks(f"create:{name}"):
            if not self.store.has_collection(name):
                try:
                    return self.create(user, name, None, None)
                except CollectionExistsError:
                    pass  # another process (a worker) made it meanwhile: use that one
            return self.store.collection_info(self.gate.open(user, name, "upload"))

    def rename(self, user: User, old: str, new: str) -> None:
        self.gate.open(user, old, "rename")
        # Not while a write to either name is under way (locks taken in a fixed order).
        with contextlib.ExitStack() as held:
            for name in sorted({old, new}):
                held.enter_context(self.locks(name))
            self.store.rename_collection(old, new)
            self.gate.sharing.rename(old, new.strip())
            self.conversations.rename_collection(old, new.strip())

    def delete(self, user: User, name: str) -> None:
        self.gate.open(user, name, "delete_collection")
        with self.locks(name):
            key = self.store.collection_key(name)
            docs = self.store.documents(name)
            self.store.delete_collection(name)
            for d in docs:
                self.page_views.drop(d.doc_id)
            self.lexical.drop(key)
            self.gate.sharing.drop(name)
            self.conversations.drop_collection(name)
