"""The access rules as a table (user x role x action), by user id (no name confers
anything), refusals, and the bind check.

The accounts (hashing, slow-down and lock-out) and the engine's use of the rules are in
tests/integration/test_access.py."""

from __future__ import annotations

import pytest

from rag.core.errors import AccessDeniedError, ConfigError
from rag.team.access import ACTIONS, LOCAL, Sharing, User, allowed, check, check_bind

READ = {"read", "search", "chat"}
EDIT = READ | {"upload", "delete_document", "reindex"}
ALL = set(ACTIONS)
# Users by id; each name differs from the id, so a rule that read names would fail.
ANN, ED, RITA, BOB = (User(f"u-{name}", name) for name in ("ann", "ed", "rita", "bob"))
SHARING = Sharing("u-ann", readers=frozenset({"u-rita"}), editors=frozenset({"u-ed"}))

# user, the collection's sharing, the actions allowed (every other action is refused)
TABLE = [
    (ANN, SHARING, ALL),  # the owner
    (ED, SHARING, EDIT),  # an editor
    (RITA, SHARING, READ),  # a reader
    (BOB, SHARING, set()),  # not shared with
    (User("u-boss", "boss", admin=True), SHARING, ALL),  # an administrator
    (LOCAL, SHARING, ALL),  # single-user mode
    (BOB, Sharing("u-ann", everyone="reader"), READ),  # shared with everyone
    (BOB, Sharing("u-ann", everyone="editor"), EDIT),
    # the higher of two roles counts
    (RITA, Sharing("u-ann", readers=frozenset({"u-rita"}), everyone="editor"), EDIT),
    # A name confers nothing: an account named like the owner's id, or named "local"
    # (single-user mode's user), on a collection of that owner or of the administrators.
    (User("u-other", "u-ann"), SHARING, set()),
    (User("u-mallory", "local"), Sharing(""), set()),
    (User("u-mallory", "local"), Sharing("local"), set()),
    (User("u-boss", "boss", admin=True), Sharing(""), ALL),  # no owner: the administrators'
    (ANN, Sharing(""), set()),
]


@pytest.mark.parametrize("user,sharing,may", TABLE)
def test_rules_table(user: User, sharing: Sharing, may: set[str]) -> None:
    for action in ACTIONS:
        assert allowed(user, action, sharing) == (action in may), (user, action)
        if action in may:
            check(user, action, sharing, "notes")
        else:
            with pytest.raises(AccessDeniedError):
                check(user, action, sharing, "notes")


def test_refusals_say_what_is_missing() -> None:
    with pytest.raises(AccessDeniedError, match="do not have access to the collection 'notes'"):
        check(BOB, "search", SHARING, "notes")
    with pytest.raises(AccessDeniedError, match="needs the editor role"):
        check(RITA, "upload", SHARING, "notes")


@pytest.mark.parametrize(
    "address,auth,ok",
    [
        ("127.0.0.1", "", True),
        ("localhost", "", True),
        ("::1", "", True),
        ("0.0.0.0", "", False),
        ("", "", False),  # Streamlit's default: every address
        ("192.168.1.5", "", False),
        ("0.0.0.0", "none", True),  # behind an authenticating proxy, said explicitly
        ("0.0.0.0", "accounts", True),
        ("0.0.0.0", "accounts,oidc", True),
    ],
)
def test_serving_beyond_this_machine_needs_a_sign_in(address: str, auth: str, ok: bool) -> None:
    if ok:
        check_bind(address, auth)
    else:
        with pytest.raises(ConfigError, match="DOCCHAT_AUTH"):
            check_bind(address, auth)


def test_unknown_auth_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="DOCCHAT_AUTH"):
        check_bind("127.0.0.1", "ldap")
    with pytest.raises(ConfigError):
        check_bind("127.0.0.1", "none,accounts")
