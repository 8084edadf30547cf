"""Built-in accounts in the record store: users with a stable id and an argon2
password hash, throttled sign-in, sessions, and the removal of a user together with
everything that referred to them.

A user's id ("u" + 24 hex digits) is made with the account and never changes:
sessions, API keys, ownership and shares refer to it, so renaming a user changes a
label only, and a new account with a removed user's name starts with nothing. Names
are unique and lower case (`check_name`). A password is kept only as its argon2id
hash (`argon2-cffi`: the memory-hard hash the Password Hashing Competition chose,
with its recommended parameters) and never logged. A session is a random token;
only its SHA-256 is stored (`sessions.digest`), with its user id and expiry.

Failed sign-ins are slowed per user name and per client: after `FREE_FAILURES`
failures each attempt must wait twice as long as the one before (from 1 s, at most
`MAX_DELAY`), and after `LOCK_AFTER` failures the name (or client) is locked for
`LOCK_SECONDS`. The counters are rows of `signin_failures`, shared by every process
on the record store, so several processes allow no more attempts than one.

Every change is one transaction (`Database.write`); the argon2 work, slow on purpose,
runs outside it, since a transaction that lost a race is run again.

Left out: password rules beyond a minimum length, e-mail resets, two-factor sign-in.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, false, func, insert, select, update

from rag.core.errors import AccountError, SignInError
from rag.records import Database
from rag.records.database import Conflict
from rag.records.rows import upsert
from rag.records.schema import (
    LOCAL_ID,
    api_keys,
    collections,
    sessions,
    shares,
    signin_failures,
    users,
)
from rag.team.access import LOCAL, User

MIN_PASSWORD = 8
FREE_FAILURES = 3
MAX_DELAY = 8.0  # seconds: 39 s of waits to the lock; the lock is what stops guessing
LOCK_AFTER = 10
LOCK_SECONDS = 15 * 60
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-@")
_WRONG = "Wrong user name or password."


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    admin: bool = False
    disabled: bool = False
    created: float = 0.0
    password_hash: str = field(default="", repr=False)  # "": signs in elsewhere (OIDC)

    @property
    def user(self) -> User:
        return User(self.id, self.name, admin=self.admin)


def new_user_id() -> str:
    return "u" + secrets.token_hex(12)


class Accounts:
    """The accounts of one record store (any number of processes may share it)."""

    def __init__(
        self, db: Database, *, session_hours: float = 12.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.session_seconds = session_hours * 3600
        self._clock = clock

    # -- reading -------------------------------------------------------------------------

    def list(self) -> list[Account]:
        query = select(users).order_by(users.c.name)
        return self.db.read(lambda c: [_account(r) for r in c.execute(query)])

    def get(self, name: str) -> Account | None:
        clean = name.strip().lower()
        return self.db.read(lambda c: _by_name(c, clean))

    def by_id(self, user_id: str) -> Account | None:
        return self.db.read(lambda c: _by_id(c, user_id))

    def current_user(self, user_id: str) -> User | None:
        """The user as they are now (their name and role today): single-user mode's
        user for its id; None when the account was removed or is disabled."""
        if user_id == LOCAL_ID:
            return LOCAL
        account = self.by_id(user_id)
        return account.user if account is not None and not account.disabled else None

    def has_admin_with_password(self) -> bool:
        """Whether an enabled administrator can sign in with a password."""
        return self.db.read(_password_admins) > 0

    # -- changes -------------------------------------------------------------------------

    def add(
        self, name: str, password: str, *, admin: bool = False, first_admin: bool = False
    ) -> Account:
        """A new account (a new id); with `first_admin`, only while no administrator
        can sign in with a password (two first starts at once make one)."""
        name = check_name(name)
        _check_password(password)
        account = Account(new_user_id(), name, admin, False, self._clock(),
                          _hasher().hash(password))  # fmt: skip

        def add(c: Connection) -> Account:
            if first_admin and _password_admins(c):
                raise AccountError("An administrator exists already: sign in.")
            if _by_name(c, name) is not None:
                raise AccountError(f"The user {name!r} already exists.")
            c.execute(insert(users).values(**asdict(account)))
            return account

        try:
            return self.db.write(add)
        except Conflict:  # made by another process between our check and insert
            raise AccountError(f"The user {name!r} already exists.") from None

    def external(self, name: str, *, admin: bool = False) -> Account:
        """The account of a user signed in elsewhere (OIDC), found by name (their
        e-mail) and made on first sight with a new id (no password: it cannot sign in
        here); `admin` makes it an administrator."""
        account = self.get(name)
        if account is not None and (account.admin or not admin):
            return account  # every page run asks: no write when nothing changes

        def record(c: Connection) -> Account:
            found = _by_name(c, name)
            if found is None:
                found = Account(new_user_id(), name, admin, False, self._clock(), "")
                c.execute(insert(users).values(**asdict(found)))
            elif admin and not found.admin:
                found = replace(found, admin=True)
                c.execute(update(users).where(users.c.id == found.id).values(admin=True))
            return found

        try:
            return self.db.write(record)
        except Conflict:  # another process recorded them first: theirs is the account
            return self.db.write(record)

    def rename(self, old: str, new: str) -> Account:
        """A new name for the account; its id, and so everything it has, stays."""
        new = check_name(new)

        def rename(c: Connection) -> Account:
            account = _named(c, old)
            if new != account.name and _by_name(c, new) is not None:
                raise AccountError(f"The user {new!r} already exists.")
            c.execute(update(users).where(users.c.id == account.id).values(name=new))
            return replace(account, name=new)

        try:
            return self.db.write(rename)
        except Conflict:
            raise AccountError(f"The user {new!r} already exists.") from None

    def set_password(self, name: str, password: str) -> None:
        """A new password; every session of the user ends."""
        _check_password(password)
        hashed = _hasher().hash(password)

        def change(c: Connection) -> None:
            account = _named(c, name)
            c.execute(update(users).where(users.c.id == account.id).values(password_hash=hashed))
            c.execute(delete(sessions).where(sessions.c.user_id == account.id))

        self.db.write(change)

    def update(self, name: str, *, admin: bool | None = None, disabled: bool | None = None,
               keep_an_admin: bool = False) -> None:  # fmt: skip
        """Make or unmake an administrator, disable or enable (disabling ends the
        sessions); with `keep_an_admin`, never the last enabled administrator's."""

        def change(c: Connection) -> None:
            account = _named(c, name)
            is_admin = account.admin if admin is None else admin
            off = account.disabled if disabled is None else disabled
            if keep_an_admin and not (is_admin and not off):
                _keep_an_admin(c, account)
            c.execute(update(users).where(users.c.id == account.id)
                      .values(admin=is_admin, disabled=off))  # fmt: skip
            if off:
                c.execute(delete(sessions).where(sessions.c.user_id == account.id))

        self.db.write(change)

    def remove(
        self, name: str, *, heir: str | None = None, keep_an_admin: bool = False
    ) -> tuple[str, ...]:
        """Remove the account and what referred to it, in one transaction: its
        sessions end, its API keys are revoked, its shares go, and the collections it
        owned pass to `heir` (a user id; None: the administrators). The names of
        those collections, sorted. With `keep_an_admin`, never the last administrator."""

        def remove(c: Connection) -> tuple[str, ...]:
            account = _named(c, name)
            if keep_an_admin:
                _keep_an_admin(c, account)
            gone = account.id
            to = heir if heir not in (gone, LOCAL_ID) else None
            owned = select(collections.c.name).where(collections.c.owner_id == gone)
            names = tuple(sorted(c.execute(owned).scalars()))
            c.execute(update(collections).where(collections.c.owner_id == gone).values(owner_id=to))
            for table in (shares, api_keys, sessions):
                c.execute(delete(table).where(table.c.user_id == gone))
            counter = signin_failures.c.key == _name_key(account.name)
            c.execute(delete(signin_failures).where(counter))
            c.execute(delete(users).where(users.c.id == gone))
            return names

        return self.db.write(remove)

    # -- signing in ----------------------------------------------------------------------

    def sign_in(self, name: str, password: str, client: str = "") -> str:
        """A new session token, or `SignInError` (wrong name or password, locked, or
        too soon after a failure: the message says how long to wait)."""
        name = name.strip().lower()
        keys = [_name_key(name), f"client:{client}"] if client else [_name_key(name)]
        now = self._clock()

        # The attempt is counted as a failure before the password is checked, and the
        # count undone on success: guesses sent at once (from any number of
        # processes) cannot all pass the delay while the first one is being checked.
        def attempt(c: Connection) -> Account | None:
            counters = select(signin_failures.c.count, signin_failures.c.last)
            for count, last in c.execute(counters.where(signin_failures.c.key.in_(keys))):
                wait = _wait(count, last, now)
                if wait > 0:
                    raise SignInError(_wait_message(wait, count))
            for key in keys:
                upsert(c, signin_failures, {"key": key}, {"count": 1, "last": now},
                       {"count": signin_failures.c.count + 1, "last": now})  # fmt: skip
            return _by_name(c, name)

        account = self.db.write(attempt)
        if account is None or account.disabled or not _verifies(account.password_hash, password):
            raise SignInError(_WRONG)
        token = secrets.token_urlsafe(32)

        def open_session(c: Connection) -> bool:
            now_ = _by_id(c, account.id)
            if now_ is None or now_.disabled or now_.password_hash != account.password_hash:
                return False  # removed, disabled or given a new password meanwhile
            c.execute(delete(signin_failures).where(signin_failures.c.key.in_(keys)))
            c.execute(delete(sessions).where(sessions.c.user_id == account.id,
                                             sessions.c.expires <= now))  # fmt: skip
            c.execute(insert(sessions).values(digest=_digest(token), user_id=account.id,
                                              expires=now + self.session_seconds))  # fmt: skip
            return True

        if not self.db.write(open_session):
            raise SignInError(_WRONG)
        return token

    def user_of(self, token: str) -> User | None:
        """The user a session token belongs to, or None (unknown, expired, ended)."""
        if not token:
            return None
        session = sessions.c.digest == _digest(token), sessions.c.expires > self._clock()
        query = (
            select(users)
            .join(sessions, sessions.c.user_id == users.c.id)
            .where(*session, users.c.disabled == false())
        )
        row = self.db.read(lambda c: c.execute(query).first())
        return _account(row).user if row is not None else None

    def sign_out(self, token: str) -> None:
        query = delete(sessions).where(sessions.c.digest == _digest(token))
        self.db.write(lambda c: c.execute(query))


# -- rows ------------------------------------------------------------------------------------


def _account(row: Row[Any]) -> Account:
    return Account(str(row.id), str(row.name), bool(row.admin), bool(row.disabled),
                   float(row.created), str(row.password_hash or ""))  # fmt: skip


def _by_name(c: Connection, name: str) -> Account | None:
    row = c.execute(select(users).where(users.c.name == name)).first()
    return _account(row) if row is not None else None


def _by_id(c: Connection, user_id: str) -> Account | None:
    row = c.execute(select(users).where(users.c.id == user_id)).first()
    return _account(row) if row is not None else None


def _named(c: Connection, name: str) -> Account:
    """The account a name means (names are stored lower case, see `check_name`)."""
    account = _by_name(c, name.strip().lower())
    if account is None:
        raise AccountError(f"No user named {name!r}.")
    return account


def _admins(c: Connection, *where: ColumnElement[bool]) -> int:
    """How many enabled administrators (of those `where` says)."""
    query = select(func.count()).select_from(users).where(users.c.admin, ~users.c.disabled)
    return int(c.execute(query.where(*where)).scalar_one())


def _password_admins(c: Connection) -> int:
    return _admins(c, users.c.password_hash != "")


def _keep_an_admin(c: Connection, account: Account) -> None:
    """Refuse to leave no enabled administrator (checked in the changing transaction,
    so two administrators removing each other at once cannot both succeed)."""
    if account.admin and not _admins(c, users.c.id != account.id):
        raise AccountError("That would leave no administrator: make another one first.")


# -- names, passwords, throttling ------------------------------------------------------------


def check_name(name: str) -> str:
    """A user name as stored: lower case; letters, digits and . _ - @ only."""
    clean = name.strip().lower()
    if not clean or len(clean) > 64 or not set(clean) <= _NAME_CHARS:
        raise AccountError(
            "A user name is 1-64 characters: letters, digits and . _ - @ (e.g. an e-mail)."
        )
    return clean


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"A password needs at least {MIN_PASSWORD} characters.")


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


def _verifies(password_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(_hasher().verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _name_key(name: str) -> str:
    return f"user:{name}"


def _wait(count: int, last: float, now: float) -> float:
    """How long an attempt must still wait after `count` failures, the last at `last`."""
    if count < FREE_FAILURES:
        return 0.0
    if count >= LOCK_AFTER:
        return last + LOCK_SECONDS - now
    return last + min(2.0 ** (count - FREE_FAILURES), MAX_DELAY) - now


def _wait_message(seconds: float, failures: int) -> str:
    if failures >= LOCK_AFTER:
        minutes = max(1, round(seconds / 60))
        return f"Too many failed sign-ins: locked for {minutes} more minute(s)."
    return f"Too many failed sign-ins: wait {max(1, round(seconds))} s before trying again."
