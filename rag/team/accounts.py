"""Built-in accounts: user names with argon2 password hashes, sign-in with throttling,
and sessions that a password change or a removal ends.

Accounts live in `<data dir>/accounts.json` (atomic writes); a password is kept only
as its argon2id hash (`argon2-cffi`: the memory-hard hash the Password Hashing
Competition chose, with its recommended parameters) and never logged. A session is
a random token; only its SHA-256 is stored, with its expiry.

Failed sign-ins are slowed per user name and per client: after `FREE_FAILURES`
failures each attempt must wait twice as long as the one before (from 1 s, at most
`MAX_DELAY`), and after `LOCK_AFTER` failures the name (or client) is locked for
`LOCK_SECONDS`. The counters are in memory: a restart clears them.

Left out: password rules beyond a minimum length, e-mail resets, two-factor sign-in.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rag.core.errors import AccountError, SignInError
from rag.core.files import write_atomic
from rag.team.access import User

MIN_PASSWORD = 8
FREE_FAILURES = 3
MAX_DELAY = 8.0  # seconds: 39 s of waits to the lock; the lock is what stops guessing
LOCK_AFTER = 10
LOCK_SECONDS = 15 * 60
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-@")


@dataclass(frozen=True)
class Account:
    name: str
    admin: bool = False
    disabled: bool = False
    created: float = 0.0
    password_hash: str = field(default="", repr=False)

    @property
    def user(self) -> User:
        return User(self.name, admin=self.admin)


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


class Accounts:
    """The accounts of one data dir (thread-safe; one process)."""

    def __init__(
        self, path: Path, *, session_hours: float = 12.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        self.session_seconds = session_hours * 3600
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, _Failures] = {}
        # The last read of the file, by its (inode, mtime, size): each page run asks
        # who is signed in several times (app, sidebar, page), and every write
        # replaces the file (a new inode), so a changed file is always read again.
        self._cache: tuple[tuple[int, int, int], dict[str, Account], dict[str, Any]] | None
        self._cache = None

    # -- accounts ----------------------------------------------------------------------

    def list(self) -> list[Account]:
        with self._lock:
            return sorted(self._read()[0].values(), key=lambda a: a.name)

    def get(self, name: str) -> Account | None:
        with self._lock:
            return self._read()[0].get(name.strip().lower())

    def add(self, name: str, password: str, *, admin: bool = False) -> Account:
        name = check_name(name)
        _check_password(password)
        with self._lock:
            accounts, sessions = self._read()
            if name in accounts:
                raise AccountError(f"The user {name!r} already exists.")
            account = Account(name, admin, False, self._clock(), _hasher().hash(password))
            accounts[name] = account
            self._write(accounts, sessions)
            return account

    def external(self, name: str, *, admin: bool = False) -> Account:
        """The account of a user signed in elsewhere (OIDC), recorded on first sight
        (no password: it cannot sign in here); `admin` makes it an administrator."""
        with self._lock:
            accounts, sessions = self._read()
            account = accounts.get(name)
            if account is None or (admin and not account.admin):
                base = account or Account(name, admin, False, self._clock(), "")
                account = replace(base, admin=admin or base.admin)
                accounts[name] = account
                self._write(accounts, sessions)
            return account

    def remove(self, name: str) -> None:
        with self._lock:
            accounts, sessions = self._read()
            account = self._get(accounts, name)
            del accounts[account.name]
            self._write(accounts, _without(sessions, account.name))

    def set_password(self, name: str, password: str) -> None:
        """A new password; every session of the user ends."""
        _check_password(password)
        with self._lock:
            accounts, sessions = self._read()
            account = self._get(accounts, name)
            accounts[account.name] = replace(account, password_hash=_hasher().hash(password))
            self._write(accounts, _without(sessions, account.name))

    def update(self, name: str, *, admin: bool | None = None, disabled: bool | None = None) -> None:
        with self._lock:
            accounts, sessions = self._read()
            account = self._get(accounts, name)
            account = replace(
                account,
                admin=account.admin if admin is None else admin,
                disabled=account.disabled if disabled is None else disabled,
            )
            accounts[account.name] = account
            ended = _without(sessions, account.name) if account.disabled else sessions
            self._write(accounts, ended)

    # -- signing in ----------------------------------------------------------------------

    def sign_in(self, name: str, password: str, client: str = "") -> str:
        """A new session token, or `SignInError` (wrong name or password, locked, or
        too soon after a failure: the message says how long to wait)."""
        name = name.strip().lower()
        keys = [f"user:{name}", f"client:{client}"] if client else [f"user:{name}"]
        now = self._clock()
        with self._lock:
            for key in keys:
                wait = self._wait(key, now)
                if wait > 0:
                    raise SignInError(_wait_message(wait, self._failures[key].count))
            accounts, sessions = self._read()
            account = accounts.get(name)
            if account is None or account.disabled or not _verifies(account, password):
                for key in keys:
                    f = self._failures.setdefault(key, _Failures())
                    f.count, f.last = f.count + 1, now
                raise SignInError("Wrong user name or password.")
            for key in keys:
                self._failures.pop(key, None)
            token = secrets.token_urlsafe(32)
            sessions[_digest(token)] = {"user": name, "expires": now + self.session_seconds}
            self._write(accounts, {k: v for k, v in sessions.items() if v["expires"] > now})
            return token

    def user_of(self, token: str) -> User | None:
        """The user a session token belongs to, or None (unknown, expired, ended)."""
        if not token:
            return None
        with self._lock:
            accounts, sessions = self._read()
            s = sessions.get(_digest(token))
            if s is None or s["expires"] <= self._clock():
                return None
            account = accounts.get(s["user"])
            return account.user if account is not None and not account.disabled else None

    def sign_out(self, token: str) -> None:
        with self._lock:
            accounts, sessions = self._read()
            if sessions.pop(_digest(token), None) is not None:
                self._write(accounts, sessions)

    def _wait(self, key: str, now: float) -> float:
        f = self._failures.get(key)
        if f is None or f.count < FREE_FAILURES:
            return 0.0
        if f.count >= LOCK_AFTER:
            return f.last + LOCK_SECONDS - now
        delay = min(2.0 ** (f.count - FREE_FAILURES), MAX_DELAY)
        return f.last + delay - now

    # -- the file ------------------------------------------------------------------------

    def _get(self, accounts: dict[str, Account], name: str) -> Account:
        """The account a name means (names are stored lower case, see `check_name`)."""
        account = accounts.get(name.strip().lower())
        if account is None:
            raise AccountError(f"No user named {name!r}.")
        return account

    def _read(self) -> tuple[dict[str, Account], dict[str, dict[str, Any]]]:
        """Copies of the accounts and sessions (callers change them, then `_write`)."""
        try:
            st = self.path.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if self._cache is None or self._cache[0] != stamp:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
                accounts = {a["name"]: Account(**a) for a in raw.get("accounts", [])}
                self._cache = (stamp, accounts, dict(raw.get("sessions", {})))
        except FileNotFoundError:
            return {}, {}
        except (OSError, ValueError) as e:
            raise AccountError(f"The accounts file cannot be read ({type(e).__name__}).") from e
        return dict(self._cache[1]), dict(self._cache[2])

    def _write(self, accounts: dict[str, Account], sessions: dict[str, dict[str, Any]]) -> None:
        data = {
            "accounts": [a.__dict__ for a in sorted(accounts.values(), key=lambda a: a.name)],
            "sessions": sessions,
        }
        write_atomic(self.path, json.dumps(data, indent=1))


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


def _verifies(account: Account, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(_hasher().verify(account.password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _without(sessions: dict[str, dict[str, Any]], name: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in sessions.items() if v["user"] != name}


def _wait_message(seconds: float, failures: int) -> str:
    if failures >= LOCK_AFTER:
        minutes = max(1, round(seconds / 60))
        return f"Too many failed sign-ins: locked for {minutes} more minute(s)."
    return f"Too many failed sign-ins: wait {max(1, round(seconds))} s before trying again."
