"""The front door: who a browser session is, from its signed session cookie (built-in
accounts) or from its OIDC identity (`st.login`), and the first administrator.

Built-in accounts: a successful sign-in makes a session (`accounts.Accounts`: a random
token, stored only as its SHA-256, with an expiry) and the browser keeps it in a
cookie whose value is the token signed with HMAC-SHA256 under the server's cookie
secret (`DOCCHAT_COOKIE_SECRET`, or a random one made once in the data dir). A cookie
this server did not sign is refused before any lookup; an expired or ended session
(signed out, password changed, user removed or disabled) is refused by the lookup.

OIDC: Streamlit's own `st.login` signs the user in and keeps its own signed cookie;
this module only turns the identity (its e-mail) into a `User`: the account of that
name, made with a new id on first sight, so an administrator can disable them or make
them an administrator.

Left out: "remember me" choices (one session length, `DOCCHAT_SESSION_HOURS`), and
the cookie's transport: the page that sets it lives in `pages/`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.core.errors import AccessDeniedError, AccountError, SignInError
from rag.core.files import write_atomic
from rag.core.settings import Settings
from rag.records import open_database
from rag.records.schema import LOCAL_ID
from rag.team.access import LOCAL, User, auth_modes
from rag.team.accounts import Account, Accounts, check_name
from rag.team.keys import ApiKeys

COOKIE = "docchat_session"  # the cookie that carries a built-in account's session


def cookie_secret(settings: Settings) -> bytes:
    """The key cookies are signed with: the setting, else one made once per data dir."""
    if settings.cookie_secret:
        return settings.cookie_secret.encode()
    path = Path(settings.data_dir) / "cookie_secret"
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (FileNotFoundError, ValueError):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, secrets.token_hex(32))
        os.chmod(path, 0o600)
        return bytes.fromhex(path.read_text(encoding="ascii").strip())


def sign(token: str, secret: bytes) -> str:
    return f"{token}.{_mac(token, secret)}"


def unsign(value: str, secret: bytes) -> str | None:
    """The token a cookie carries, or None when this server did not sign it."""
    token, _, mac = value.rpartition(".")
    if not token or not hmac.compare_digest(mac, _mac(token, secret)):
        return None
    return token


def _mac(token: str, secret: bytes) -> str:
    return hmac.new(secret, token.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Identity:
    """An OIDC identity as `st.user` gives it: signed in or not, and its e-mail."""

    signed_in: bool
    email: str = ""


class SignIn:
    """Sign-in for one data dir: built-in accounts, OIDC identities, first admin."""

    def __init__(self, settings: Settings, accounts: Accounts) -> None:
        self.settings = settings
        self.accounts = accounts
        self.modes = auth_modes(settings.auth) - {"none"}
        self._secret = cookie_secret(settings) if "accounts" in self.modes else b""

    @property
    def required(self) -> bool:
        """Whether users sign in at all (not single-user mode)."""
        return bool(self.modes)

    @property
    def passwords(self) -> bool:
        return "accounts" in self.modes

    @property
    def oidc(self) -> bool:
        return "oidc" in self.modes

    # -- the first administrator ---------------------------------------------------------

    def needs_first_admin(self) -> bool:
        """Accounts are on and no administrator can sign in with a password yet."""
        return self.passwords and not self.accounts.has_admin_with_password()

    def bootstrap(self) -> None:
        """Make the first administrator from `DOCCHAT_ADMIN_USER`/`DOCCHAT_ADMIN_PASSWORD`
        when none exists (once: later changes to the settings change nothing)."""
        s = self.settings
        if self.needs_first_admin() and s.admin_user and s.admin_password:
            self.create_first_admin(s.admin_user, s.admin_password)

    def create_first_admin(self, name: str, password: str) -> None:
        if not self.passwords:
            raise AccountError("Sign-in with a password is not enabled here.")
        self.accounts.add(name, password, admin=True, first_admin=True)

    # -- built-in accounts ---------------------------------------------------------------

    def sign_in(self, name: str, password: str, client: str = "") -> str:
        """The cookie value of a new session, or `SignInError`."""
        if not self.passwords:
            raise SignInError("Sign-in with a password is not enabled here.")
        return sign(self.accounts.sign_in(name, password, client), self._secret)

    def _token(self, cookie: str) -> str | None:
        """The session token a cookie carries, when this server signed it."""
        return unsign(cookie, self._secret) if cookie and self.passwords else None

    def user_of(self, cookie: str) -> User | None:
        """The user a session cookie belongs to, or None."""
        token = self._token(cookie)
        return self.accounts.user_of(token) if token else None

    def sign_out(self, cookie: str) -> None:
        if token := self._token(cookie):
            self.accounts.sign_out(token)

    # -- OIDC ----------------------------------------------------------------------------

    def oidc_user(self, identity: Identity) -> User | None:
        """The user an OIDC identity is, recorded on first sight; None when not signed
        in; `SignInError` when the account is disabled or has no usable e-mail."""
        if not (self.oidc and identity.signed_in):
            return None
        try:
            name = check_name(identity.email)
        except AccountError:
            raise SignInError(
                "Your identity provider gave no usable e-mail address: ask it to send "
                "the 'email' claim."
            ) from None
        admin = bool(self.settings.admin_user) and name == self.settings.admin_user.lower()
        account = self.accounts.external(name, admin=admin)
        if account.disabled:
            raise SignInError(f"The account {name!r} is disabled: ask an administrator.")
        return account.user


def api_user(door: SignIn, key: str, keys: ApiKeys, *, loopback: bool) -> User:
    """Who an API request acts as: single-user mode's user when sign-in is off and the
    API listens on this machine only (no key needed); otherwise the user whose id the
    API key carries, as they are now: an enabled account (`SignInError` otherwise)."""
    if not door.required and loopback:
        return LOCAL  # any key or none: clients that insist on sending one still work
    if not key:
        raise SignInError(
            "This API needs a key: send 'Authorization: Bearer <key>' (make one on the "
            "API page or with: python -m rag keys add USER)."
        )
    user_id = keys.user_of(key)
    if user_id is None:
        raise SignInError("Invalid API key.")
    if not door.required:
        return LOCAL
    # A key made for single-user mode's user acts for no one once sign-in is on.
    user = door.accounts.current_user(user_id) if user_id != LOCAL_ID else None
    if user is None:
        raise SignInError("The API key's user no longer exists or is disabled.")
    return user


def open_accounts(settings: Settings) -> Accounts:
    """The built-in accounts of the settings' record store."""
    return Accounts(open_database(settings), session_hours=settings.session_hours)


class UserAdmin:
    """What an administrator does with accounts (the Users page, `rag users`), and the
    rules: only administrators, and never leaving no administrator, unless the acting
    user is single-user mode's (the operator on the command line, after which the
    first start asks for an administrator again). `delete_collection` deletes a
    collection as the acting user (the service layer's), for removing a user
    together with their collections."""

    def __init__(
        self,
        accounts: Accounts,
        acting: User,
        *,
        delete_collection: Callable[[str], None] | None = None,
    ) -> None:
        self.accounts = accounts
        self.acting = acting
        self._delete_collection = delete_collection
        self._keep = acting.id != LOCAL_ID

    def _check(self) -> None:
        if not self.acting.admin:
            raise AccessDeniedError("Only administrators manage users.")

    def list(self) -> list[Account]:
        self._check()
        return self.accounts.list()

    def add(self, name: str, password: str, *, admin: bool = False) -> Account:
        self._check()
        return self.accounts.add(name, password, admin=admin)

    def rename(self, old: str, new: str) -> Account:
        """A new name for a user; everything they have stays theirs."""
        self._check()
        return self.accounts.rename(old, new)

    def reset_password(self, name: str, password: str) -> None:
        self._check()
        self.accounts.set_password(name, password)

    def set_role(self, name: str, *, admin: bool) -> None:
        self._check()
        self.accounts.update(name, admin=admin, keep_an_admin=self._keep)

    def set_disabled(self, name: str, disabled: bool) -> None:
        self._check()
        self.accounts.update(name, disabled=disabled, keep_an_admin=self._keep)

    def remove(self, name: str, *, delete_collections: bool = False) -> tuple[str, ...]:
        """Remove a user: their sessions end, their keys and shares go, and the
        collections they owned become the acting administrator's (the
        administrators' when the acting user is single-user mode's, as on the command
        line), or, with `delete_collections`, are deleted. Those collections' names."""
        self._check()
        if delete_collections and self._delete_collection is None:
            raise AccountError("Deleting a user's collections needs the engine.")
        # Handed over first, in the removal's transaction: a deletion that fails
        # half-way leaves the rest with the administrator, never with nobody.
        names = self.accounts.remove(name, heir=self.acting.id, keep_an_admin=self._keep)
        if delete_collections and self._delete_collection is not None:
            for collection in names:
                self._delete_collection(collection)
        return names
