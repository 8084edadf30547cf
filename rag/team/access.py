"""Who may do what with a collection: the rules, as plain functions over plain data.

A collection has an owner and may be shared with users, or with everyone signed in,
as a reader (search, chat, read its documents and pages) or an editor (also upload,
delete documents, re-index). The owner also shares, renames and deletes it.
Administrators may do everything. In single-user mode the one user (`LOCAL`) is the
administrator. Owners, readers and editors are user ids, never names: a name is a
label that can be changed or reused, so it confers nothing. A collection with no
owner (made before sign-in was on, or by the command line) is the administrators'.

`check(user, action, sharing)` raises `AccessDeniedError` when the rule says no; the
engine calls it before every action on a collection, the pages only hide what
`allowed` says no to.

Left out: per-document rights (a collection is the unit of sharing), groups.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from rag.core.errors import AccessDeniedError, ConfigError
from rag.records.schema import LOCAL_ID

READER, EDITOR, OWNER = "reader", "editor", "owner"
_RANK = {READER: 1, EDITOR: 2, OWNER: 3}
# The least role each action needs.
ACTIONS: dict[str, str] = {
    "read": READER,  # list documents, download originals, see pages and chunks
    "search": READER,
    "chat": READER,
    "upload": EDITOR,
    "delete_document": EDITOR,
    "reindex": EDITOR,
    "share": OWNER,
    "rename": OWNER,
    "delete_collection": OWNER,
}
AUTH_MODES = ("none", "accounts", "oidc")  # `Settings.auth`: one, or "accounts,oidc"


@dataclass(frozen=True)
class User:
    """Who is acting: a stable id (made with the account), the account's name (a
    label: an e-mail for OIDC users) and whether an administrator."""

    id: str
    name: str
    admin: bool = False


# Single-user mode (and the command line): no sign-in, the one administrator.
LOCAL = User(LOCAL_ID, "local", admin=True)


@dataclass(frozen=True)
class Sharing:
    """Who a collection belongs to and who it is shared with, by user id."""

    owner: str  # a user id, or "": the administrators'
    readers: frozenset[str] = field(default_factory=frozenset)
    editors: frozenset[str] = field(default_factory=frozenset)
    everyone: str = ""  # "", READER or EDITOR: the role of every signed-in user


def role_of(user: User, sharing: Sharing) -> str | None:
    """The user's role on the collection, or None (no access)."""
    if user.admin or (sharing.owner and user.id == sharing.owner):
        return OWNER
    roles = [sharing.everyone] if sharing.everyone else []
    if user.id in sharing.editors:
        roles.append(EDITOR)
    if user.id in sharing.readers:
        roles.append(READER)
    return max(roles, key=_RANK.__getitem__) if roles else None


def allowed(user: User, action: str, sharing: Sharing) -> bool:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    role = role_of(user, sharing)
    return role is not None and _RANK[role] >= _RANK[ACTIONS[action]]


def check(user: User, action: str, sharing: Sharing, collection: str) -> None:
    """Nothing, or `AccessDeniedError` saying what the user may not do."""
    if allowed(user, action, sharing):
        return
    if role_of(user, sharing) is None:
        raise AccessDeniedError(f"You do not have access to the collection {collection!r}.")
    need = ACTIONS[action]
    raise AccessDeniedError(
        f"You may not {action.replace('_', ' ')} in {collection!r}: that needs the {need} role."
    )


def auth_modes(value: str) -> frozenset[str]:
    """The modes `DOCCHAT_AUTH` names ("" is unset: none, on this machine only)."""
    modes = frozenset(m.strip() for m in value.split(",") if m.strip())
    unknown = sorted(modes - set(AUTH_MODES))
    if unknown or ("none" in modes and len(modes) > 1):
        raise ConfigError(
            f"DOCCHAT_AUTH={value!r}: expected none, accounts, oidc or accounts,oidc."
        )
    return modes


def check_bind(address: str, auth: str) -> None:
    """Refuse to serve beyond this machine with no sign-in configured: an unset
    `DOCCHAT_AUTH` means single-user mode, which is only safe on a loopback address.
    (An explicit `none` allows it, for a deployment behind an authenticating proxy.)"""
    if auth_modes(auth) or loopback(address):
        return
    raise ConfigError(
        f"DocChat listens on {address or 'every address'} with no sign-in: set "
        "DOCCHAT_AUTH=accounts (or oidc), or DOCCHAT_AUTH=none behind an authenticating "
        "proxy, or serve on 127.0.0.1."
    )


def single_user(auth: str) -> bool:
    """No sign-in: `DOCCHAT_AUTH` unset or `none`."""
    return not auth_modes(auth) - {"none"}


def check_serving(address: str, auth: str, *, oidc_configured: bool) -> None:
    """What the app checks before it shows any page: `check_bind`, and that OIDC sign-in
    has the `[auth]` settings Streamlit's `st.login` needs."""
    check_bind(address, auth)
    if "oidc" in auth_modes(auth) and not oidc_configured:
        raise ConfigError(
            "DOCCHAT_AUTH includes oidc, but .streamlit/secrets.toml has no [auth] section "
            "(st.login needs redirect_uri, cookie_secret, client_id, client_secret and "
            "server_metadata_url): see docs/teams.md."
        )


def loopback(address: str) -> bool:
    """Whether an address to listen on is this machine only."""
    if address in ("localhost", ""):
        return address == "localhost"
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
