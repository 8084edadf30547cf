"""`python -m rag serve [--host H] [--port P]`: the HTTP API under uvicorn, and
`python -m rag keys add|list|revoke`: API keys from the command line.

The API refuses to listen beyond this machine with no sign-in configured, as the app
does (`access.check_bind`). A key is printed once, when it is made.

Left out: TLS (put a proxy that terminates HTTPS in front), several worker processes
of the API itself (one process serves; requests run in its thread pool).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from rag.cli.prog import PROG
from rag.core.errors import AccountError
from rag.core.settings import Settings
from rag.engine import DocChat
from rag.team.access import LOCAL, User, check_bind
from rag.team.keys import open_keys


def serve_main(argv: Sequence[str]) -> int:
    settings = Settings.from_env()
    p = argparse.ArgumentParser(prog=f"{PROG} serve", description="the DocChat HTTP API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=settings.api_port)
    args = p.parse_args(argv)
    check_bind(args.host, settings.auth)
    import uvicorn

    from rag.api import create_app

    engine = DocChat.open(settings)
    # Uploads through the API are jobs: served alone, this process runs their workers,
    # as the app does (with the embedded store no other process may; DOCCHAT_WORKERS=0
    # leaves them to `python -m rag worker` processes on a shared Redis).
    engine.start_workers()
    print(f"DocChat API on http://{args.host}:{args.port}/v1 (docs: /docs; MCP: /mcp)", flush=True)
    uvicorn.run(create_app(engine, host=args.host), host=args.host, port=args.port,
                log_level="warning")  # fmt: skip
    engine.close()
    return 0


def keys_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog=f"{PROG} keys", description="API keys")
    sub = p.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="make a key for a user (printed once)")
    add.add_argument("user", help=f"an account's name ({LOCAL.name!r} in single-user mode)")
    add.add_argument("--name", default="", help="what the key is for")
    ls = sub.add_parser("list", help="list keys (ids, never the keys)")
    ls.add_argument("user", nargs="?")
    ls.add_argument("--json", action="store_true")
    rm = sub.add_parser("revoke", help="remove a key by its id")
    rm.add_argument("id")
    args = p.parse_args(argv)
    settings = Settings.from_env()
    keys = open_keys(settings)
    if args.command == "add":
        user = _known_user(settings, args.user)
        record, key = keys.create(user.id, args.name)
        print(key)
        print(f"(key {record.id} for {user.name}: shown once, keep it secret)", flush=True)
    elif args.command == "list":
        names = _names(settings)
        user_id = _known_user(settings, args.user).id if args.user else None
        rows = [{**r.__dict__, "user": names.get(r.user_id, "")} for r in keys.list(user_id)]
        if args.json:
            print(json.dumps(rows, indent=1))
        for r in [] if args.json else rows:
            print(f"{r['id']}  {r['user'] or '(removed)'}  {r['name']}")
    else:
        keys.revoke(args.id)
        print(f"revoked {args.id}")
    return 0


def _known_user(settings: Settings, name: str) -> User:
    """The user a name means here: an account's, or single-user mode's user."""
    from rag.team.signin import SignIn, open_accounts

    door = SignIn(settings, open_accounts(settings))
    if not door.required:
        return LOCAL
    account = door.accounts.get(name)
    if account is None:
        raise AccountError(f"No user named {name!r}.")
    return account.user


def _names(settings: Settings) -> dict[str, str]:
    """Each user id's name (single-user mode's user's too)."""
    from rag.team.signin import open_accounts

    return {LOCAL.id: LOCAL.name} | {a.id: a.name for a in open_accounts(settings).list()}
