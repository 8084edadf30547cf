"""The record store itself, on SQLite and on a real PostgreSQL: the migrations build
exactly `schema.py`'s tables, read-modify-writes from many threads lose nothing, and
failures name no path or URL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, select, update

from rag.core.errors import StoreUnavailableError
from rag.core.settings import Settings
from rag.records import schema
from rag.records.database import Conflict, Database, open_database


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    url = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    return open_database(Settings(data_dir=tmp_path, database_url=url))


def test_migrations_build_the_schema(db: Database) -> None:
    def diff(conn: object) -> list[object]:
        return compare_metadata(MigrationContext.configure(conn), schema.metadata)

    assert db.read(diff) == []


def test_read_modify_writes_lose_nothing(db: Database) -> None:
    n_row = schema.meta.c.key == "n"  # (the store has meta rows of its own)
    value = select(schema.meta.c.value).where(n_row)
    db.write(lambda c: c.execute(insert(schema.meta).values(key="n", value="0")))

    def bump() -> None:
        for _ in range(25):

            def step(c: object) -> None:
                n = int(c.execute(value).scalar_one())  # type: ignore[attr-defined]
                c.execute(update(schema.meta).where(n_row).values(value=str(n + 1)))  # type: ignore[attr-defined]

            db.write(step)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db.read(lambda c: c.execute(value).scalar_one()) == "200"


def test_a_broken_unique_rule_is_a_conflict(db: Database) -> None:
    row = {"key": "k", "value": "v"}
    db.write(lambda c: c.execute(insert(schema.meta).values(**row)))
    with pytest.raises(Conflict):
        db.write(lambda c: c.execute(insert(schema.meta).values(**row)))


def test_failures_name_no_path(tmp_path: Path) -> None:
    db = open_database(Settings(data_dir=tmp_path / "secret-place"))
    (tmp_path / "secret-place" / "docchat.db").unlink()
    (tmp_path / "secret-place" / "docchat.db").mkdir()  # the file is gone: a folder instead
    db.close()
    with pytest.raises(StoreUnavailableError) as e:
        db.write(lambda c: c.execute(select(schema.meta)).all())
    assert "secret-place" not in str(e.value) and str(tmp_path) not in str(e.value)
