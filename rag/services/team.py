"""The team side: sign-in, the acting user's API keys, account management for
administrators (removing a user with, at the administrator's choice, their
collections), and who a collection can be shared with (sharing itself is the
collections' `Gate`).

Everything refers to users by id; names are for showing.

Left out: groups, invitations.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from rag.core.errors import CollectionNotFoundError
from rag.services.collections import CollectionService
from rag.team.access import User
from rag.team.keys import ApiKey, ApiKeys
from rag.team.signin import SignIn, UserAdmin


@dataclass(frozen=True)
class TeamService:
    signin: SignIn
    keys: ApiKeys
    collections: CollectionService

    def users(self, acting: User) -> UserAdmin:
        """Account management, for administrators (`AccessDeniedError` for others).
        Removing a user with `delete_collections` deletes them as `acting`, after the
        removal has handed them to `acting`."""
        delete = partial(self._delete_collection, acting)
        return UserAdmin(self.signin.accounts, acting, delete_collection=delete)

    def _delete_collection(self, acting: User, name: str) -> None:
        try:
            self.collections.delete(acting, name)
        except CollectionNotFoundError:  # gone already (its record was all that was left)
            self.collections.gate.sharing.drop(name)

    def people(self) -> list[tuple[str, str]]:
        """Who a collection can be shared with: every enabled account, as (id, name)."""
        return [(a.id, a.name) for a in self.signin.accounts.list() if not a.disabled]

    def api_keys(self, user: User) -> list[ApiKey]:
        return self.keys.list(user.id)

    def create_api_key(self, user: User, name: str) -> tuple[ApiKey, str]:
        """A new key for `user`: its record and the key, shown once."""
        return self.keys.create(user.id, name)

    def revoke_api_key(self, user: User, key_id: str) -> None:
        self.keys.revoke(key_id, user.id)
