"""The front door (rag.team.signin): signed session cookies, the first administrator,
OIDC identities, the administrators' account management.

Per-user conversations (they need an engine) are in tests/integration/test_signin.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import Settings
from rag.core.errors import AccessDeniedError, AccountError, ConfigError, SignInError
from rag.team.access import LOCAL, User, check_serving
from rag.team.signin import Identity, SignIn, UserAdmin, cookie_secret, open_accounts, sign, unsign


def door(tmp_path: Path, auth: str = "accounts", **more: str) -> SignIn:
    settings = Settings(data_dir=tmp_path, auth=auth, **more)  # type: ignore[arg-type]
    return SignIn(settings, open_accounts(settings))


def test_cookies_are_signed_and_only_this_server_s_are_taken(tmp_path: Path) -> None:
    secret = cookie_secret(Settings(data_dir=tmp_path))
    assert secret == cookie_secret(Settings(data_dir=tmp_path))  # made once, kept
    assert (tmp_path / "cookie_secret").stat().st_mode & 0o077 == 0  # owner only
    value = sign("token-123", secret)
    assert unsign(value, secret) == "token-123"
    assert unsign(value, b"another server") is None
    assert unsign("token-123.deadbeef", secret) is None
    assert unsign("", secret) is None and unsign("no-mac", secret) is None
    configured = cookie_secret(Settings(data_dir=tmp_path, cookie_secret="from-settings"))
    assert configured == b"from-settings"
    assert "from-settings" not in repr(Settings(cookie_secret="from-settings"))


def test_sign_in_gives_a_signed_session_that_sign_out_ends(tmp_path: Path) -> None:
    d = door(tmp_path)
    ann = d.accounts.add("ann", "ann-password").user
    assert ann.name == "ann" and ann.id.startswith("u") and len(ann.id) == 25
    cookie = d.sign_in("Ann", "ann-password")
    assert d.user_of(cookie) == ann
    token = cookie.rpartition(".")[0]
    assert d.user_of(token) is None  # the bare token is not a cookie this server made
    assert d.user_of(token + ".0" * 32) is None
    d.sign_out(cookie)
    assert d.user_of(cookie) is None
    with pytest.raises(SignInError, match="Wrong user name or password"):
        d.sign_in("ann", "not-the-password")


def test_another_process_s_changes_are_seen_at_once(tmp_path: Path) -> None:
    # A change by another instance (another process) counts at the next call.
    here, there = door(tmp_path), door(tmp_path)
    ann = here.accounts.add("ann", "ann-password").user
    cookie = here.sign_in("ann", "ann-password")
    assert here.user_of(cookie) == there.user_of(cookie) == ann
    there.accounts.update("ann", disabled=True)
    assert here.user_of(cookie) is None
    there.accounts.update("ann", disabled=False)
    there.sign_out(cookie)
    assert here.user_of(cookie) is None


def test_first_administrator_once(tmp_path: Path) -> None:
    d = door(tmp_path, admin_user="Root", admin_password="root-password")
    assert d.needs_first_admin()
    d.bootstrap()
    assert not d.needs_first_admin()
    (root,) = d.accounts.list()
    assert root.name == "root" and root.admin
    d.bootstrap()  # again: nothing changes
    assert len(d.accounts.list()) == 1
    with pytest.raises(AccountError, match="exists already"):
        d.create_first_admin("mallory", "mallory-password")
    # Single-user mode has no accounts to ask for.
    assert not door(tmp_path / "single", auth="").needs_first_admin()


def test_oidc_identities_become_users_an_admin_can_disable(tmp_path: Path) -> None:
    d = door(tmp_path, auth="oidc", admin_user="boss@example.com")
    assert d.oidc_user(Identity(False)) is None
    boss = d.oidc_user(Identity(True, "Boss@Example.com"))
    assert boss is not None and (boss.name, boss.admin) == ("boss@example.com", True)
    ann = d.oidc_user(Identity(True, "ann@example.com"))
    assert ann is not None and (ann.name, ann.admin) == ("ann@example.com", False)
    assert d.oidc_user(Identity(True, "ann@example.com")) == ann  # found by name: same id
    with pytest.raises(SignInError, match="e-mail"):
        d.oidc_user(Identity(True, ""))
    UserAdmin(d.accounts, boss).set_disabled("ann@example.com", True)
    with pytest.raises(SignInError, match="disabled"):
        d.oidc_user(Identity(True, "ann@example.com"))
    # An OIDC account has no password: it cannot sign in with one.
    both = door(tmp_path, auth="accounts,oidc")
    with pytest.raises(SignInError):
        both.sign_in("boss@example.com", "")


def test_only_administrators_manage_users_and_one_always_stays(tmp_path: Path) -> None:
    accounts = open_accounts(Settings(data_dir=tmp_path))
    root = accounts.add("root", "root-password", admin=True).user
    ann = accounts.add("ann", "ann-password").user
    with pytest.raises(AccessDeniedError, match="administrators"):
        UserAdmin(accounts, ann).add("eve", "eve-password")
    admin = UserAdmin(accounts, root)
    admin.add("bob", "bob-password")
    cookie = accounts.sign_in("bob", "bob-password")
    admin.reset_password("bob", "new-password")
    assert accounts.user_of(cookie) is None  # a reset ends the sessions
    for change in (
        lambda: admin.set_role("root", admin=False),
        lambda: admin.set_disabled("root", True),
        lambda: admin.remove("root"),
    ):
        with pytest.raises(AccountError, match="no administrator"):
            change()
    admin.set_role("ann", admin=True)
    admin.set_role("root", admin=False)  # now allowed: ann is one
    assert [a.name for a in admin.list() if a.admin] == ["ann"]
    # A rename changes the label only: the id (and what refers to it) stays.
    renamed = UserAdmin(accounts, accounts.current_user(ann.id) or ann).rename("ann", "Anna")
    assert (renamed.id, renamed.name) == (ann.id, "anna")
    assert accounts.current_user(ann.id) == User(ann.id, "anna", admin=True)
    with pytest.raises(AccountError, match="already exists"):
        accounts.rename("anna", "root")
    # The operator (single-user mode's user, on the command line) may remove the last
    # administrator: the first start then asks for one again.
    UserAdmin(accounts, LOCAL).remove("anna")
    assert accounts.current_user(ann.id) is None
    assert not accounts.has_admin_with_password()


def test_oidc_needs_its_auth_section() -> None:
    check_serving("127.0.0.1", "accounts", oidc_configured=False)
    check_serving("0.0.0.0", "oidc", oidc_configured=True)
    with pytest.raises(ConfigError, match=r"\[auth\]"):
        check_serving("127.0.0.1", "accounts,oidc", oidc_configured=False)
