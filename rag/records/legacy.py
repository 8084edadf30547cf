"""The JSON files of releases before the record store, imported into it once.

`import_legacy(conn, data_dir)` runs inside the migration's transaction at every
first open of a store per process. A `meta` row ("legacy_import") says it ran: then
it returns at once. Otherwise it reads what an earlier release left in the data dir
and turns every name into a user id:

- `accounts.json`: each account becomes a user with a new random id; unexpired
  sessions of enabled users are kept.
- `api_keys.json`: a key is kept for a user that exists; a key whose user was
  removed is dropped (it would pass to the next account with that name), and so is
  one made before its user's account (it was a removed namesake's). A key made for
  `local` without such an account is single-user mode's (`LOCAL_ID`).
- `sharing.json`: a collection's owner becomes the owner's id, or NULL (the
  administrators') when the owner is `local` or no account; shares naming no account
  are dropped.
- `conversations/*.json` (single-user mode's: `LOCAL_ID`) and
  `conversations/users/<sha256(name)[:16]>/*.json` (each folder matched to the account
  whose name hashes to it; other folders are skipped): one conversation each, a turn
  per question and answer, the answer kept as the file's assistant message; each
  turn's parent is the one before it, and the last is the branch shown.
- `finetune/jobs.json` and `finetune/users/<sha256(name)[:16]>/jobs.json`: one
  `finetune_jobs` row per job.

Turns and jobs older than their user's account were a removed namesake's and are
dropped too. Shares carry no time: a share a removed namesake had (the release gave
it to the new account already) is kept.

A record that is already in the store (a name, key or job id taken) is skipped, so
the import never fails on one. An unreadable accounts, keys or sharing file stops the
start with an error (the release refused to work with one too); an unreadable
conversation or job file is skipped, as the release showed it empty.

Then each file or folder read is renamed `<name>.migrated`, at the very end, but
before the transaction commits: a rename cannot be rolled back. So first a marker,
`legacy-import.json`, names the store the files went to (a hash of its URL). If the
commit then fails (a crash, a lost race that `Database.write` runs again), the next
attempt finds no meta row, the marker naming this store and the files renamed: it
reads the `.migrated` ones. A different, empty store (a new PostgreSQL database)
never reads `.migrated` files, so it cannot bring back keys or users removed after
the upgrade. Renaming or the marker failing (a read-only data dir) is logged, not
fatal: the meta row alone prevents a second import.

Left out: upload job records in Huey's `jobs.db` (history of an earlier release's
uploads; they stay there, unread), and page views or other caches (rebuilt).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from rag.core.errors import StoreUnavailableError
from rag.records import schema
from rag.records.schema import LOCAL_ID

log = logging.getLogger(__name__)

KEY = "legacy_import"  # the meta row that says the import ran
SUFFIX = ".migrated"
MARKER = "legacy-import.json"
_ROLES = ("reader", "editor")


class LegacyImportError(StoreUnavailableError):
    """A file of an earlier release cannot be read: nothing was imported."""


def import_legacy(conn: Connection, data_dir: Path) -> None:
    """Import the data dir's files of an earlier release (once per record store)."""
    if conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == KEY)).first():
        return
    data_dir = Path(data_dir)
    store = _fingerprint(conn)
    files = _Files(data_dir, retry=_marker_store(data_dir) == store)
    counts: dict[str, int] = {}
    ids, born = _accounts(conn, files, counts)
    _keys(conn, files, ids, born, counts)
    _sharing(conn, files, ids, counts)
    _conversations(conn, files, ids, born, counts)
    _finetune(conn, files, ids, born, counts)
    summary = {"at": time.time(), **counts}
    conn.execute(insert(schema.meta).values(key=KEY, value=json.dumps(summary)))
    if files.read:
        log.info("imported the files of an earlier release: %s", counts)
    if files.originals:
        _mark(data_dir, store, files.originals)
        for path in files.originals:
            _rename(path)


# -- which files -----------------------------------------------------------------------------


class _Files:
    """The legacy files found: the originals, or (when an earlier attempt renamed them
    and did not commit) their `.migrated` copies."""

    def __init__(self, data_dir: Path, *, retry: bool) -> None:
        self.data_dir = data_dir
        self.retry = retry
        self.originals: list[Path] = []  # renamed at the end
        self.read = False

    def find(self, relative: str) -> Path | None:
        path = self.data_dir / relative
        if path.exists():
            self.originals.append(path)
            self.read = True
            return path
        kept = path.with_name(path.name + SUFFIX)
        if self.retry and kept.exists():
            self.read = True
            return kept
        return None


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _required(path: Path | None, what: str) -> Any:
    """A file the release could not work without: unreadable stops the import."""
    if path is None:
        return None
    try:
        return _load(path)
    except (OSError, ValueError) as e:
        raise _unreadable(what, e) from None


def _unreadable(what: str, e: Exception) -> LegacyImportError:
    return LegacyImportError(
        f"The {what} file of an earlier release cannot be read ({type(e).__name__}): "
        "repair it or move it out of the data dir, then start again."
    )


def _folder_owners(ids: dict[str, str]) -> dict[str, str]:
    """Per-user folder name (sha256 of the name, 16 hex digits) -> user id."""
    return {hashlib.sha256(name.encode()).hexdigest()[:16]: uid for name, uid in ids.items()}


# -- the records -------------------------------------------------------------------------------


def _accounts(
    conn: Connection, files: _Files, counts: dict[str, int]
) -> tuple[dict[str, str], dict[str, float]]:
    """Users and their sessions; returns name -> new id of each user imported, and
    id -> when the account was made."""
    raw = _required(files.find("accounts.json"), "accounts")
    if raw is None:
        return {}, {}
    now = time.time()
    try:
        users = [
            {
                "id": "u" + secrets.token_hex(12),
                "name": str(a["name"]),
                "admin": bool(a.get("admin", False)),
                "disabled": bool(a.get("disabled", False)),
                "created": float(a.get("created", 0.0)),
                "password_hash": str(a.get("password_hash", "")),
            }
            for a in raw.get("accounts", [])
        ]
        sessions = [(str(d), str(s["user"]), float(s["expires"]))
                    for d, s in dict(raw.get("sessions", {})).items()]  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise _unreadable("accounts", e) from None
    added = _insert_new(conn, schema.users, users, ("name",), ("id",))
    ids = {u["name"]: u["id"] for u in added}
    enabled = {u["name"] for u in added if not u["disabled"]}
    rows = [{"digest": d, "user_id": ids[name], "expires": expires}
            for d, name, expires in sessions if expires > now and name in enabled]  # fmt: skip
    counts["users"] = len(added)
    counts["sessions"] = len(_insert_new(conn, schema.sessions, rows, ("digest",)))
    return ids, {u["id"]: u["created"] for u in added}


def _before(born: dict[str, float], user_id: str, at: float) -> bool:
    """Whether a record made at `at` predates its user's account (a namesake's)."""
    return 0 < at < born.get(user_id, 0.0)


def _keys(
    conn: Connection,
    files: _Files,
    ids: dict[str, str],
    born: dict[str, float],
    counts: dict[str, int],
) -> None:
    raw = _required(files.find("api_keys.json"), "API keys")
    if raw is None:
        return
    rows: list[dict[str, Any]] = []
    try:
        for digest, r in dict(raw).items():
            name = str(r["user"])
            user_id = ids.get(name) or (LOCAL_ID if name == LOCAL_ID else None)
            created = float(r.get("created", 0.0))
            if user_id is None or _before(born, user_id, created):
                # Its user was removed: the key must not pass to a new namesake.
                counts["keys_dropped"] = counts.get("keys_dropped", 0) + 1
                continue
            rows.append({"digest": str(digest), "id": str(r["id"]), "user_id": user_id,
                         "name": str(r.get("name", ""))[:80], "created": created})  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise _unreadable("API keys", e) from None
    counts["keys"] = len(_insert_new(conn, schema.api_keys, rows, ("digest",), ("id",)))


def _sharing(conn: Connection, files: _Files, ids: dict[str, str], counts: dict[str, int]) -> None:
    raw = _required(files.find("sharing.json"), "sharing")
    if raw is None:
        return
    collections: list[dict[str, Any]] = []
    shares: list[dict[str, Any]] = []
    try:
        for name, r in dict(raw).items():
            owner = str(r["owner"])
            everyone = str(r.get("everyone", ""))
            collections.append({
                "name": str(name),
                "owner_id": None if owner == LOCAL_ID else ids.get(owner),
                "everyone": everyone if everyone in _ROLES else "",
                "version": 0,
            })  # fmt: skip
            roles: dict[str, str] = {}
            for role in _ROLES:  # an editor listed as a reader too is an editor
                for user in r.get(f"{role}s", []):
                    if str(user) in ids:
                        roles[ids[str(user)]] = role
            shares += [{"collection": str(name), "user_id": uid, "role": role}
                       for uid, role in roles.items()]  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise _unreadable("sharing", e) from None
    added = _insert_new(conn, schema.collections, collections, ("name",))
    kept = {c["name"] for c in added}
    shares = [s for s in shares if s["collection"] in kept]
    counts["collections"] = len(added)
    counts["shares"] = len(_insert_new(conn, schema.shares, shares, ("collection", "user_id")))


def _conversations(
    conn: Connection,
    files: _Files,
    ids: dict[str, str],
    born: dict[str, float],
    counts: dict[str, int],
) -> None:
    folder = files.find("conversations")
    if folder is None or not folder.is_dir():
        return
    found: list[tuple[str, Path]] = [(LOCAL_ID, p) for p in sorted(folder.glob("*.json"))]
    owners = _folder_owners(ids)
    for sub in sorted((folder / "users").glob("*")):
        if sub.name in owners:  # a folder no account hashes to: a removed user's
            found += [(owners[sub.name], p) for p in sorted(sub.glob("*.json"))]
    for owner_id, path in found:
        try:
            raw = _load(path)
            collection = str(raw["collection"])
            turns = [t for t in _turns(raw["messages"]) if not _before(born, owner_id, t["at"])]
            mtime = path.stat().st_mtime
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            log.warning("a conversation of an earlier release cannot be read: skipped")
            continue
        if not turns:
            continue
        cid = "c" + secrets.token_hex(12)
        at = [t["at"] for t in turns if t["at"]] or [mtime]
        conn.execute(insert(schema.conversations).values(
            id=cid, owner_id=owner_id, collection=collection, title="", created=min(at),
            updated=max(at),
        ))  # fmt: skip
        parent: int | None = None
        for t in turns:  # one insert each: a turn's parent is the id of the one before
            new = insert(schema.turns).values(conversation_id=cid, parent_id=parent, **t)
            parent = conn.execute(new.returning(schema.turns.c.id)).scalar_one()
        conn.execute(update(schema.conversations).where(schema.conversations.c.id == cid)
                     .values(leaf_id=parent))  # fmt: skip
        counts["conversations"] = counts.get("conversations", 0) + 1
        counts["turns"] = counts.get("turns", 0) + len(turns)


def _turns(messages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A release's messages as turn rows: a user message, then the assistant's answer
    (kept as it is, but for `stopped` and `at`, which have columns)."""
    rows: list[dict[str, Any]] = []
    question: str | None = None
    for m in messages:
        if m.get("role") == "user":
            question = str(m.get("content", ""))
        elif m.get("role") == "assistant" and question is not None:
            details = dict(m.get("docchat") or {})
            stopped = bool(details.pop("stopped", False))
            at = float(details.pop("at", 0.0))
            answer = {"role": "assistant", "content": str(m.get("content", "")),
                      "docchat": details}  # fmt: skip
            rows.append({"question": question, "answer": answer, "stopped": stopped, "at": at})
            question = None
    return rows


def _finetune(
    conn: Connection,
    files: _Files,
    ids: dict[str, str],
    born: dict[str, float],
    counts: dict[str, int],
) -> None:
    found = [(LOCAL_ID, files.find("finetune/jobs.json"))]
    owners = _folder_owners(ids)
    users = files.data_dir / "finetune" / "users"
    for sub in sorted(users.glob("*")):
        if sub.name in owners:
            found.append((owners[sub.name], files.find(f"finetune/users/{sub.name}/jobs.json")))
    rows: list[dict[str, Any]] = []
    if not any(path for _, path in found):
        return
    for owner_id, path in found:
        if path is None:
            continue
        try:
            rows += [{"id": str(j["id"]), "owner_id": owner_id,
                      "created": float(j.get("created", 0.0)), "record": dict(j)}
                     for j in _load(path)]  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            log.warning("fine-tuning records of an earlier release cannot be read: skipped")
    rows = [r for r in rows if not _before(born, r["owner_id"], r["created"])]
    counts["finetune_jobs"] = len(_insert_new(conn, schema.finetune_jobs, rows, ("id",)))


def _insert_new(
    conn: Connection, table: Table, rows: list[dict[str, Any]], *unique: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Insert the rows that take no value a unique key of `table` has (in the table or
    in an earlier row); returns them."""
    seen = [{tuple(r) for r in conn.execute(select(*(table.c[c] for c in key)))}
            for key in unique]  # fmt: skip
    fresh: list[dict[str, Any]] = []
    for row in rows:
        values = [tuple(row[c] for c in key) for key in unique]
        if any(v in s for v, s in zip(values, seen, strict=True)):
            log.warning("a record of an earlier release is in the store already: skipped")
            continue
        for v, s in zip(values, seen, strict=True):
            s.add(v)
        fresh.append(row)
    if fresh:
        conn.execute(insert(table), fresh)
    return fresh


# -- after the import: the marker and the renames ----------------------------------------------


def _fingerprint(conn: Connection) -> str:
    """Which store this is, without its password: a hash of its URL."""
    url = conn.engine.url.render_as_string(hide_password=True)
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _marker_store(data_dir: Path) -> str:
    try:
        return str(_load(data_dir / MARKER)["store"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _mark(data_dir: Path, store: str, paths: list[Path]) -> None:
    names = [str(p.relative_to(data_dir)) for p in paths]
    data = {"store": store, "at": time.time(), "renamed": names}
    try:
        (data_dir / MARKER).write_text(json.dumps(data, indent=1), encoding="utf-8")
    except OSError as e:
        log.warning("cannot write the legacy import's marker (%s)", type(e).__name__)


def _rename(path: Path) -> None:
    """`path` -> `<path>.migrated` (or `.migrated-2`, ... when that name is taken)."""
    target, n = path.with_name(path.name + SUFFIX), 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}{SUFFIX}-{n}")
    try:
        path.rename(target)
    except OSError as e:
        log.warning("cannot rename an imported file (%s): left as it is", type(e).__name__)
