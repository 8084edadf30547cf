"""Bring a record store up to date: Alembic's migrations (`migrations/versions`) to
the newest schema, then, once, the JSON files an earlier release kept in the data
dir (`legacy.py`). Several processes may start at once: the first to take the lock
migrates, the others find the work done.

Left out: downgrades (a release's migrations only go forward).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from rag.records.database import Database

_SCRIPTS = Path(__file__).parent / "migrations"
_LOCK_ID = 0x0D0C_C4A7  # PostgreSQL advisory lock held while migrating


def alembic_config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.attributes["connection"] = conn
    return cfg


def upgrade(db: Database, data_dir: Path) -> None:
    """The newest schema, and the data dir's legacy files imported (in one write)."""

    def migrate(conn: Connection) -> None:
        if db.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        command.upgrade(alembic_config(conn), "head")
        from rag.records.legacy import import_legacy

        import_legacy(conn, data_dir)

    db.write(migrate)
