"""Collection versions (rag.components.versions) on SQLite and on a real PostgreSQL,
and the store bumping them at every write that changes what a collection shows."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from rag import DocChat
from rag.components.versions import CollectionVersions
from rag.core.settings import Settings
from rag.records import schema
from rag.records.database import open_database


@pytest.fixture(params=["sqlite", "postgresql"])
def versions(request: pytest.FixtureRequest, tmp_path: Path) -> CollectionVersions:
    url = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    return CollectionVersions(open_database(Settings(data_dir=tmp_path, database_url=url)))


def test_a_bump_adds_one_to_that_collection_only(versions: CollectionVersions) -> None:
    assert versions.of("notes") == 0  # no row: never written to
    assert versions.bump("notes") == 1
    assert versions.bump("notes") == 2
    assert versions.bump("other") == 1
    assert (versions.of("notes"), versions.of("other"), versions.of("none")) == (2, 1, 0)


def test_a_bump_keeps_the_owner_and_sharing_columns(versions: CollectionVersions) -> None:
    row = {"name": "team", "owner_id": "u" + "a" * 24, "everyone": "reader", "version": 4,
           "refresh_hours": 6.0, "refreshed": 123.0}  # fmt: skip
    versions.db.write(lambda c: c.execute(insert(schema.collections).values(**row)))
    assert versions.bump("team") == 5
    got = versions.db.read(lambda c: c.execute(select(schema.collections)).one())
    assert got._asdict() == {**row, "version": 5}
    # A row made by a bump is the administrators', as no row is.
    versions.bump("fresh")
    query = select(schema.collections).where(schema.collections.c.name == "fresh")
    made = versions.db.read(lambda c: c.execute(query).one())
    assert (made.owner_id, made.everyone, made.version) == (None, "", 1)


def test_concurrent_bumps_lose_none(versions: CollectionVersions) -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def bump() -> None:
        for _ in range(25):
            v = versions.bump("busy")
            with lock:
                seen.append(v)

    # The first bumps race to make the row, the rest to add to it.
    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert versions.of("busy") == 200
    assert sorted(seen) == list(range(1, 201))  # each bump saw its own version


def test_every_write_bumps_the_collection_s_version(app: DocChat) -> None:
    v = app.services.store.versions
    seen = {"default": v.of("default")}

    def bumped(*names: str) -> bool:
        """Whether each name's version rose since the last call (and remember them)."""
        now = {n: v.of(n) for n in names}
        rose = all(now[n] > seen.get(n, 0) for n in names)
        seen.update(now)
        return rose

    app.ensure_collection()
    assert bumped("default")  # created
    app.ingest("cats.txt", b"Cats sleep sixteen hours a day.\n")
    assert bumped("default")  # added
    app.ingest("cats.txt", b"Cats chase laser pointers at night.\n")
    assert bumped("default")  # replaced
    before = v.of("default")
    app.ingest("cats.txt", b"Cats chase laser pointers at night.\n")
    assert v.of("default") == before  # unchanged: nothing written, nothing to re-read
    app.delete_document("cats.txt")
    assert bumped("default")  # deleted
    app.ingest("dogs.txt", b"Dogs bark at strangers.\n")
    app.reindex(chunk_tokens=32, chunk_overlap=4)
    assert bumped("default", "default (re-indexing)")  # the copy renamed over it
    app.rename_collection("default", "animals")
    assert bumped("default", "animals")  # the new name differs from any earlier "animals"
    app.delete_collection("animals")
    assert bumped("animals")
