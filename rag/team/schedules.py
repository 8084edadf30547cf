"""When each collection's web pages are fetched again: its refresh schedule in the
record store (the `refresh_hours` and `refreshed` columns of its `collections` row).

A schedule of 0 hours (every row's default) means never. `due` lists the collections
whose last scheduled refresh is older than their schedule; `take` claims one of them
with a conditional UPDATE that names the `refreshed` time it read, so when several
watchers (processes, machines) see the same due collection, exactly one row count is 1
and only that watcher queues the refresh. Saving a schedule also sets `refreshed` to
now: the first refresh comes one period after the schedule is saved.

Left out: who may set a schedule (`services/web.py` checks the editor's right), and
the refresh itself (`jobs/web_refresh.py`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, select, update

from rag.core.errors import ConfigError
from rag.records.database import Database
from rag.records.rows import upsert
from rag.records.schema import collections as coll_t

_HOUR_S = 3600.0
MAX_HOURS = 24.0 * 366  # a longer period is a typo, not a schedule


@dataclass(frozen=True)
class Schedule:
    """A collection's refresh schedule: every `hours` (0: never), last queued at
    `refreshed` (unix seconds, 0: never), run as `owner` ("" : the administrators)."""

    collection: str
    hours: float
    refreshed: float
    owner: str

    def due(self, now: float) -> bool:
        return self.hours > 0 and now - self.refreshed >= self.hours * _HOUR_S


def _schedule(r: Row[Any, Any, Any, Any]) -> Schedule:  # (name, hours, refreshed, owner)
    return Schedule(str(r.name), float(r.refresh_hours), float(r.refreshed), str(r.owner_id or ""))


_COLUMNS = (coll_t.c.name, coll_t.c.refresh_hours, coll_t.c.refreshed, coll_t.c.owner_id)


def check_hours(hours: float) -> float:
    """`hours` as a schedule, or a `ConfigError` saying what is allowed."""
    if not math.isfinite(hours) or hours < 0 or hours > MAX_HOURS:
        raise ConfigError(f"Refresh every 0 (never) to {MAX_HOURS:g} hours, not {hours:g}.")
    return float(hours)


class Schedules:
    """The refresh schedules of one record store (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def of(self, collection: str) -> Schedule:
        def read(c: Connection) -> Schedule:
            row = c.execute(select(*_COLUMNS).where(coll_t.c.name == collection)).first()
            return Schedule(collection, 0.0, 0.0, "") if row is None else _schedule(row)

        return self.db.read(read)

    def set(self, collection: str, hours: float, now: float | None = None) -> None:
        """Refresh `collection` every `hours` (0: never), the first time `hours` from now."""
        values = {"refresh_hours": check_hours(hours),
                  "refreshed": time.time() if now is None else now}  # fmt: skip
        self.db.write(lambda c: upsert(c, coll_t, {"name": collection}, values))

    def due(self, now: float) -> list[Schedule]:
        """The collections whose scheduled refresh is due at `now`."""
        query = select(*_COLUMNS).where(coll_t.c.refresh_hours > 0)
        # (few rows have a schedule; the period test in Python reads the same on both
        # databases, where the arithmetic in SQL would need each one's float rules)
        rows = self.db.read(lambda c: c.execute(query).all())
        return [s for s in map(_schedule, rows) if s.due(now)]

    def take(self, schedule: Schedule, now: float) -> bool:
        """Claim a due refresh: True for the one caller whose UPDATE changed the row
        (it still had the `refreshed` time this caller read), False for the others."""
        row = coll_t.c.name == schedule.collection
        unchanged = coll_t.c.refreshed == schedule.refreshed
        stmt = (
            update(coll_t).where(row, unchanged, coll_t.c.refresh_hours > 0).values(refreshed=now)
        )
        return bool(self.db.write(lambda c: c.execute(stmt).rowcount) == 1)


def move(c: Connection, old: str, new: str) -> None:
    """A renamed collection's schedule goes with it (in the rename's transaction)."""
    row = c.execute(select(*_COLUMNS).where(coll_t.c.name == old)).first()
    if row is not None:
        c.execute(update(coll_t).where(coll_t.c.name == new)
                  .values(refresh_hours=row.refresh_hours, refreshed=row.refreshed))  # fmt: skip
