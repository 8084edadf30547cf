"""The record store: everything DocChat keeps besides Chroma, the originals and
Huey's queue (users, sessions, sign-in counters, API keys, collection ownership,
sharing and versions, conversations, fine-tuning and upload job records).

SQLAlchemy 2 Core over SQLite in the data dir (the default: no server) or
PostgreSQL (`DOCCHAT_DATABASE_URL`), the same code for both; Alembic migrations
(`migrations/`) make and upgrade the schema (`schema.py`). `Database.write` runs one
read-modify-write as one serializable transaction, retried when it loses a race.

Left out: an ORM (the rows become the callers' frozen dataclasses in the module that
reads them), and sharding.
"""

from rag.records.database import Database, open_database

__all__ = ["Database", "open_database"]
