"""Four processes change one record store at once for a while (sign-ins, disable and
enable, share and unshare, key create and revoke, conversation appends, collection
create and rename: tests/fixtures/state_load.py); afterwards the state must equal
what the processes' logs of committed changes imply. Run on SQLite in the data dir
and on a real PostgreSQL server. `DOCCHAT_TEST_STATE_SECONDS` sets how long (60).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from rag.components.conversations import Conversations
from rag.core.settings import Settings
from rag.records.database import database_url, open_database
from rag.team.access import Sharing
from rag.team.accounts import Accounts
from rag.team.keys import ApiKeys
from rag.team.sharing import SharingStore
from tests.fixtures.paths import ROOT
from tests.fixtures.state_load import PASSWORD, SHARED, users

pytestmark = pytest.mark.slow

PROCESSES = 4
SECONDS = float(os.environ.get("DOCCHAT_TEST_STATE_SECONDS", "60"))


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_no_lost_update(database: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = "" if database == "sqlite" else request.getfixturevalue("pg_url")
    settings = Settings(data_dir=tmp_path / "data", database_url=url)
    db = open_database(settings)
    accounts, keys, sharing = Accounts(db), ApiKeys(db), SharingStore(db)
    admin = accounts.add("admin", PASSWORD, admin=True)
    for p in range(PROCESSES):
        for name in users(p):
            accounts.add(name, PASSWORD)
    sharing.set(SHARED, Sharing(admin.id))
    Conversations(db, admin.id).create(SHARED)  # the one conversation every process appends to

    logs = [tmp_path / f"proc{p}.jsonl" for p in range(PROCESSES)]
    script = [sys.executable, "-m", "tests.fixtures.state_load", database_url(settings)]
    procs = [
        subprocess.Popen(
            [*script, str(p), str(SECONDS), str(logs[p])],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(PROCESSES)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=SECONDS + 240)
        assert proc.returncode == 0, err[-3000:]

    entries = [[json.loads(line) for line in log.read_text().splitlines()] for log in logs]
    lost: list[str] = []
    shared = sharing.of(SHARED)
    questions = [t.question for t in Conversations(db, admin.id).load(SHARED).turns]
    ops: Counter[str] = Counter()
    for p, log in enumerate(entries):
        me, target = users(p)
        me_id = accounts.get(me).id  # type: ignore[union-attr]
        ops.update(e["op"] for e in log)
        # Sign-ins: a session each (none expires or is ended during the test).
        sessions = _sessions(db, me_id)
        if sessions != sum(e["op"] == "signin" for e in log):
            lost.append(f"proc {p}: {sessions} sessions for its sign-ins")
        # Disable and enable: the last change holds.
        toggles = [e["disabled"] for e in log if e["op"] == "disable"]
        if toggles and accounts.get(target).disabled != toggles[-1]:  # type: ignore[union-attr]
            lost.append(f"proc {p}: {target} disabled is not {toggles[-1]}")
        # Share and unshare on the shared record: the last change holds.
        grants = [e["shared"] for e in log if e["op"] == "share"]
        if grants and (me_id in shared.readers) != grants[-1]:
            lost.append(f"proc {p}: {me} shared is not {grants[-1]}")
        # Keys: made and not revoked.
        made = {e["id"] for e in log if e["op"] == "key"}
        made -= {e["id"] for e in log if e["op"] == "revoke"}
        if {k.id for k in keys.list(me_id)} != made:
            lost.append(f"proc {p}: keys differ")
        # Collections: each made one has its owner, under its last name.
        renamed = {e["old"]: e["new"] for e in log if e["op"] == "rename"}
        for e in log:
            if e["op"] == "create":
                name = renamed.get(e["name"], e["name"])
                if sharing.of(name).owner != me_id:
                    lost.append(f"proc {p}: {name} lost its owner")
                if name != e["name"] and sharing.of(e["name"]).owner:
                    lost.append(f"proc {p}: {e['name']} still owned after its rename")
        # Appends: every turn there once.
        asked = [e["question"] for e in log if e["op"] == "append"]
        if sorted(q for q in questions if q.startswith(f"p{p}-")) != sorted(asked):
            lost.append(f"proc {p}: conversation turns differ")
    print(f"\n{database}: {sum(ops.values())} committed changes in {SECONDS:g} s by "
          f"{PROCESSES} processes ({dict(sorted(ops.items()))}); lost: {len(lost)}")  # fmt: skip
    assert sum(ops.values()) > PROCESSES * 10
    assert lost == []


def _sessions(db: object, user_id: str) -> int:
    from sqlalchemy import func, select

    from rag.records.schema import sessions

    query = select(func.count()).select_from(sessions).where(sessions.c.user_id == user_id)
    return int(db.read(lambda c: c.execute(query).scalar_one()))  # type: ignore[attr-defined]
