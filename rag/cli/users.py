"""`python -m rag users add|list|rename|remove|passwd`: built-in accounts from the
command line.

The command line acts as the machine's operator (single-user mode's user, an
administrator): it may remove the last administrator (the first start then asks for
one), and a removed user's collections go to the administrators, there being no
acting administrator to hand them to.

Passwords are read without echo from the terminal, or one line from standard input
with `--password-stdin` (for scripts); never from an argument (it would show in the
process list and the shell history).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Sequence

from rag.cli.prog import PROG
from rag.core.errors import AccountError
from rag.core.settings import Settings
from rag.team.access import LOCAL
from rag.team.signin import UserAdmin, open_accounts

_REMOVE = (
    "remove a user: their sessions end, their API keys and shares go, and the collections "
    "they owned become the administrators' (or are deleted, with --delete-collections)"
)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise AccountError("The two passwords differ.")
    return first


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog=f"{PROG} users", description="built-in accounts")
    sub = p.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a user")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="an administrator")
    add.add_argument("--password-stdin", action="store_true")
    sub.add_parser("list", help="list users").add_argument("--json", action="store_true")
    mv = sub.add_parser("rename", help="rename a user (everything they have stays theirs)")
    mv.add_argument("name")
    mv.add_argument("new_name")
    rm = sub.add_parser("remove", help=_REMOVE, description=_REMOVE + ".")
    rm.add_argument("name")
    rm.add_argument("--delete-collections", action="store_true",
                    help="delete the collections they owned instead")  # fmt: skip
    pw = sub.add_parser("passwd", help="set a user's password (their sessions end)")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true")
    args = p.parse_args(list(argv))
    settings = Settings.from_env()
    accounts = open_accounts(settings)
    if args.command == "add":
        account = accounts.add(args.name, _password(args), admin=args.admin)
        print(f"added {account.name}{' (administrator)' if account.admin else ''}")
    elif args.command == "list":
        rows = [{"id": a.id, "name": a.name, "admin": a.admin, "disabled": a.disabled,
                 "created": a.created} for a in accounts.list()]  # fmt: skip
        if args.json:
            print(json.dumps(rows, indent=2))
        for r in [] if args.json else rows:
            flags = [f for f, on in (("admin", r["admin"]), ("disabled", r["disabled"])) if on]
            print(f"{r['name']}  {' '.join(flags)}".rstrip())
        if not rows and not args.json:
            print("(no users)")
    elif args.command == "rename":
        renamed = accounts.rename(args.name, args.new_name)
        print(f"renamed {args.name} to {renamed.name}")
    elif args.command == "remove":
        _remove(settings, args.name, delete=args.delete_collections)
    else:
        accounts.set_password(args.name, _password(args))
        print(f"password changed for {args.name}; their sessions ended")
    return 0


def _remove(settings: Settings, name: str, *, delete: bool) -> None:
    if delete:  # deleting collections takes the engine (Chroma, the indexes beside it)
        from rag.engine import DocChat

        engine = DocChat.open(settings)
        try:
            names = engine.users.remove(name, delete_collections=True)
        finally:
            engine.close()
    else:
        names = UserAdmin(open_accounts(settings), LOCAL).remove(name)
    what = "deleted" if delete else "now the administrators'"
    listed = f": {', '.join(names)}" if names else ""
    print(f"removed {name}; {len(names)} collection(s) of theirs {what}{listed}")
