"""The team side: sign-in, the acting user's API keys, account management for
administrators, and who a collection can be shared with (sharing itself is the
collections' `Gate`).

Left out: identities that outlive a user name (the state issue).
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.team.access import User
from rag.team.keys import ApiKey, ApiKeys
from rag.team.signin import SignIn, UserAdmin


@dataclass(frozen=True)
class TeamService:
    signin: SignIn
    keys: ApiKeys

    def users(self, acting: User) -> UserAdmin:
        """Account management, for administrators (`AccessDeniedError` for others)."""
        return UserAdmin(self.signin.accounts, acting)

    def user_names(self) -> list[str]:
        """Who a collection can be shared with: every enabled account."""
        return [a.name for a in self.signin.accounts.list() if not a.disabled]

    def api_keys(self, user: User) -> list[ApiKey]:
        return self.keys.list(user.name)

    def create_api_key(self, user: User, name: str) -> tuple[ApiKey, str]:
        """A new key for `user`: its record and the key, shown once."""
        return self.keys.create(user.name, name)

    def revoke_api_key(self, user: User, key_id: str) -> None:
        self.keys.revoke(key_id, user.name)
