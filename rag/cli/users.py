"""`python -m rag users add|list|remove|passwd`: built-in accounts from the command line.

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
from rag.team.signin import open_accounts


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
    sub.add_parser("remove", help="remove a user (their sessions end)").add_argument("name")
    pw = sub.add_parser("passwd", help="set a user's password (their sessions end)")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true")
    args = p.parse_args(list(argv))
    accounts = open_accounts(Settings.from_env())
    if args.command == "add":
        account = accounts.add(args.name, _password(args), admin=args.admin)
        print(f"added {account.name}{' (administrator)' if account.admin else ''}")
    elif args.command == "list":
        rows = [{"name": a.name, "admin": a.admin, "disabled": a.disabled, "created": a.created}
                for a in accounts.list()]  # fmt: skip
        if args.json:
            print(json.dumps(rows, indent=2))
        for r in [] if args.json else rows:
            flags = [f for f, on in (("admin", r["admin"]), ("disabled", r["disabled"])) if on]
            print(f"{r['name']}  {' '.join(flags)}".rstrip())
        if not rows and not args.json:
            print("(no users)")
    elif args.command == "remove":
        accounts.remove(args.name)
        print(f"removed {args.name}")
    else:
        accounts.set_password(args.name, _password(args))
        print(f"password changed for {args.name}; their sessions ended")
    return 0
