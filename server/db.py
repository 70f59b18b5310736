"""The database behind the store: its two tables and an engine for a SQLAlchemy URL.

SQLite gets its directory created, a WAL journal with ``synchronous=FULL`` (a commit that
returned survives a killed process or a power cut), foreign keys, and real transactions
(SQLAlchemy emits BEGIN; writers take the lock up front with BEGIN IMMEDIATE). Any other
URL (PostgreSQL) gets a plain pooled engine: the store's queries use no dialect's own SQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Double,
    Engine,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

metadata = MetaData()
workspaces = Table(
    "workspaces",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created", Double, nullable=False),
    Column("last_used", Double, nullable=False, index=True),
)
models = Table(
    "models",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "workspace_id",
        String(32),
        ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("spec", Text, nullable=False),  # JSON
    Column("seed", BigInteger, nullable=False),
    Column("params", BigInteger, nullable=False),
    Column("weights", LargeBinary, nullable=True),  # safetensors; NULL: as built from the seed
    Column("frozen", Text, nullable=False),  # JSON list of parameter names
    Column("version", Integer, nullable=False),
    Column("created", Double, nullable=False),
    Column("updated", Double, nullable=False),
)
META_COLUMNS = [c for c in models.c if c.name != "weights"]


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (_sqlite_begin)
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_size_limit=67108864")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # a writer takes the write lock up front: a deferred transaction that reads and then
    # writes can fail at once (SQLITE_BUSY) when another connection wrote in between
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets its directory, WAL, full sync and real transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    memory = parsed.database in (None, "", ":memory:")
    connect_args = {"check_same_thread": False, "timeout": 30.0}
    if memory:  # one connection shared by every thread; the store serializes its use
        engine = create_engine(parsed, connect_args=connect_args, poolclass=StaticPool)
    else:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed, connect_args=connect_args, pool_size=8, max_overflow=8, pool_timeout=30
        )
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine
