"""The record store's tables (SQLAlchemy Core). A migration in `migrations/versions`
makes each change; `tests/unit/test_records_schema.py` checks that the migrations
build exactly these tables.

Every reference to a person is a user id (`users.id`, random, made at creation),
never a name: a name is a label that can change or be reused. `LOCAL_ID` is single-
user mode's one user. A collection is referred to by its name (Chroma's key; a
rename updates every table in one transaction). Times are unix seconds (float).
JSON columns hold the callers' own frozen dataclasses as dicts.

Left out: foreign keys between tables (deletes cascade in the code that owns them,
in the same transaction), so that a record can outlive what it names on purpose
(a job record keeps its user id after the user is removed).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

LOCAL_ID = "local"  # single-user mode's user; random ids are "u" + 24 hex digits

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("admin", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created", Float, nullable=False),
    Column("password_hash", Text, nullable=False, default=""),  # "": signs in elsewhere (OIDC)
)

sessions = Table(
    "sessions",
    metadata,
    Column("digest", String(64), primary_key=True),  # SHA-256 of the session token
    Column("user_id", String(32), nullable=False, index=True),
    Column("expires", Float, nullable=False),
)

# Failed sign-ins per key ("user:<name>" or "client:<address>"), shared by every process.
signin_failures = Table(
    "signin_failures",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("last", Float, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("digest", String(64), primary_key=True),  # SHA-256 of the key
    Column("id", String(16), nullable=False, unique=True),  # the key's first characters
    Column("user_id", String(32), nullable=False, index=True),
    Column("name", String(80), nullable=False, default=""),
    Column("created", Float, nullable=False),
)

# One row per collection that has an owner record or has been written to. No row, or
# owner_id NULL: the administrators' (made before sign-in was on, or by the CLI).
collections = Table(
    "collections",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("owner_id", String(32), nullable=True),
    Column("everyone", String(16), nullable=False, default=""),  # "", reader or editor
    Column("version", Integer, nullable=False, default=0),  # one more at every write
    # Its web pages fetched again every `refresh_hours` (0: never) by the job queue's
    # watcher; `refreshed` is when the last scheduled refresh was queued (`team/schedules.py`).
    Column("refresh_hours", Float, nullable=False, server_default="0"),
    Column("refreshed", Float, nullable=False, server_default="0"),
)

shares = Table(
    "shares",
    metadata,
    Column("collection", String(200), primary_key=True),
    Column("user_id", String(32), primary_key=True),
    Column("role", String(16), nullable=False),  # reader or editor
    Index("ix_shares_user", "user_id"),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner_id", String(32), nullable=False),
    Column("collection", String(200), nullable=False),
    Column("title", String(200), nullable=False, default=""),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
    # The ChatSettings as a dict. NOT NULL with a server default: the rows that exist when
    # the column is added, and every insert that leaves it out, hold {} (the defaults), so
    # no reader has a NULL to handle.
    Column("settings", JSON, nullable=False, server_default="{}"),
    Column("leaf_id", Integer, nullable=True),  # the last turn of the shown branch
    Index("ix_conversations_owner", "owner_id", "collection"),
)

# A turn is inserted, never rewritten with the others: appends cannot lose each other.
# The turns of a conversation form a tree by `parent_id` (NULL: a first question); a
# regenerated answer or an edited question is a new turn beside the one it replaces.
turns = Table(
    "turns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String(32), nullable=False),
    Column("parent_id", Integer, nullable=True),
    Column("question", Text, nullable=False),
    Column("answer", JSON, nullable=False),  # the Answer as a dict
    Column("stopped", Boolean, nullable=False, default=False),
    Column("at", Float, nullable=False),
    # (conversation, parent) also serves every lookup by conversation alone.
    Index("ix_turns_conversation_parent", "conversation_id", "parent_id"),
)

finetune_jobs = Table(
    "finetune_jobs",
    metadata,
    Column("id", String(100), primary_key=True),  # the server's job id
    Column("owner_id", String(32), nullable=False, index=True),
    Column("created", Float, nullable=False),
    Column("record", JSON, nullable=False),  # the JobInfo as a dict
)

upload_jobs = Table(
    "upload_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(32), nullable=False),
    Column("collection", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("files", JSON, nullable=False),  # [JobFile as a dict, ...]
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
    Column("error", Text, nullable=False, default=""),
    Column("attempt", Integer, nullable=False, default=0),
    Column("worker", String(200), nullable=False, default=""),
    Column("lease_until", Float, nullable=False, default=0.0),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Index("ix_upload_jobs_user", "user_id", "created"),
    Index("ix_upload_jobs_status", "status"),
)

# A tuning job of a collection's embedding model (`jobs/tune_records.py`). `request` holds
# what the job was started with: its pairs as (question, chunk id) and the training's
# overrides; the passages are read from the collection when the job runs.
tune_jobs = Table(
    "tune_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(32), nullable=False),
    Column("collection", String(200), nullable=False),
    Column("source", String(16), nullable=False),  # studio, pairs or pseudo
    Column("status", String(16), nullable=False),
    Column("stage", String(32), nullable=False, default=""),
    Column("progress", Float, nullable=False, default=0.0),  # 0 to 1 of the stage
    Column("message", Text, nullable=False, default=""),
    Column("model", String(64), nullable=False, default=""),  # the tuned name once trained
    Column("error", Text, nullable=False, default=""),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
    Column("worker", String(200), nullable=False, default=""),
    Column("lease_until", Float, nullable=False, default=0.0),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("request", JSON, nullable=False),
    Index("ix_tune_jobs_user", "user_id", "created"),
    Index("ix_tune_jobs_status", "status"),
)

# One row per uploaded file's bytes (`<data_dir>/uploads/<sha256>`): the row is locked
# while the file is written or deleted, so a submit and a cleanup cannot interleave.
upload_blobs = Table(
    "upload_blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
)

# Passwords of encrypted PDFs, per job and file index; deleted when the job ends.
job_secrets = Table(
    "job_secrets",
    metadata,
    Column("job_id", String(32), primary_key=True),
    Column("secrets", JSON, nullable=False),
)

# Fixed-window request counters (the API's per-key rate limit), shared by processes.
rate_counters = Table(
    "rate_counters",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("window_end", Float, nullable=False),
    Column("count", Integer, nullable=False),
)

# Facts about the store itself ("legacy_import": when the JSON files were migrated).
meta = Table(
    "meta",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)
