"""The JSON files of earlier releases, imported into the record store once.

(Filled in with the import of accounts, keys, sharing, conversations and job records.)
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection


def import_legacy(conn: Connection, data_dir: Path) -> None:
    """Import the data dir's JSON files (none yet)."""
