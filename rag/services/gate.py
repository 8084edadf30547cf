"""Who may do what with a collection: the access rules (`team/access.py`) applied to
the collection's sharing record (by user id), for the acting user every service call
names.

Left out: rules per document (a collection is the unit of sharing).
"""

from __future__ import annotations

from rag.core.settings import Settings
from rag.team.access import Sharing, User, allowed, check, role_of
from rag.team.sharing import SharingStore


class Gate:
    def __init__(self, settings: Settings, sharing: SharingStore) -> None:
        self.default = settings.collection
        self.sharing = sharing

    def name(self, collection: str | None) -> str:
        """The collection meant: the one given, or the settings' default."""
        return collection or self.default

    def open(self, user: User, collection: str | None, action: str) -> str:
        """The collection meant, once `user` may do `action` with it
        (`AccessDeniedError` otherwise)."""
        name = self.name(collection)
        check(user, action, self.sharing.of(name), name)
        return name

    def may(self, user: User, action: str, collection: str | None) -> bool:
        """Whether `user` may do `action` (pages hide what this says no to)."""
        return allowed(user, action, self.sharing.of(self.name(collection)))

    def role(self, user: User, collection: str | None) -> str:
        """`user`'s role on the collection ("" when none)."""
        return role_of(user, self.sharing.of(self.name(collection))) or ""

    def sharing_of(self, user: User, collection: str | None) -> Sharing:
        return self.sharing.of(self.open(user, collection, "read"))

    def share(self, user: User, collection: str, sharing: Sharing) -> None:
        """Set who owns the collection and who else may use it (its owner or an admin)."""
        self.sharing.set(self.open(user, collection, "share"), sharing)


def owner(user: User) -> str:
    """Whose conversations and jobs these are: the user's id (never a name, which can
    be changed or reused)."""
    return user.id
