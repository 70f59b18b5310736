"""The database behind the store: its tables, its schema version, and an engine for a URL.

SQLite gets its directory created, a WAL journal with ``synchronous=FULL`` (a commit that
returned survives a killed process or a power cut), foreign keys, and real transactions
(SQLAlchemy emits BEGIN; writers take the lock up front with BEGIN IMMEDIATE). Any other
URL (PostgreSQL) gets a plain pooled engine: the store's queries use no dialect's own SQL.
"""

from __future__ import annotations

from collections.abc import Callable
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
    insert,
    inspect,
    select,
    update,
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
    Column("preset", String(64), nullable=True),  # schema 3: the preset it was created from
)
META_COLUMNS = [c for c in models.c if c.name != "weights"]
# A training of a model (schema 2): its configuration, where it stands, its metrics as
# numbered events (the SSE stream replays them after a dropped connection or a restart) and
# its checkpoints (safetensors at chosen steps).
trainings = Table(
    "trainings",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "workspace_id",
        String(32),
        ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("model_id", String(32), ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("model_version", Integer, nullable=False),  # the version it started from
    Column("config", Text, nullable=False),  # JSON: the TrainConfig as sent, filled
    Column("status", String(16), nullable=False, index=True),
    Column("step", Integer, nullable=False),
    Column("total_steps", Integer, nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("seq", Integer, nullable=False),  # the last event's number
    Column("latest", Text, nullable=False),  # JSON: the latest metrics
    Column("error", Text, nullable=True),
    Column("created", Double, nullable=False),
    Column("updated", Double, nullable=False),
)
training_events = Table(
    "training_events",
    metadata,
    Column(
        "training_id",
        String(32),
        ForeignKey("trainings.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("seq", Integer, primary_key=True),
    Column("data", Text, nullable=False),  # JSON
)
checkpoints = Table(
    "checkpoints",
    metadata,
    Column(
        "training_id",
        String(32),
        ForeignKey("trainings.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("step", Integer, primary_key=True),
    Column("weights", LargeBinary, nullable=False),  # safetensors
    Column("created", Double, nullable=False),
)

# The layout above is schema version SCHEMA_VERSION. A database records the version it was
# written with; a later layout adds MIGRATIONS[v] (from v to v + 1, run in one transaction
# when the store opens). A database written by a newer playground is refused, not guessed at.
SCHEMA_VERSION = 3


def _add_preset_column(conn: Connection) -> None:
    """Schema 3: a model remembers the preset it was created from (GET said null)."""
    if "preset" not in {c["name"] for c in inspect(conn).get_columns("models")}:
        conn.exec_driver_sql("ALTER TABLE models ADD COLUMN preset VARCHAR(64)")


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: lambda conn: metadata.create_all(
        conn, tables=[trainings, training_events, checkpoints]
    ),  # trainings, their events and checkpoints
    2: _add_preset_column,
}
schema_info = Table(
    "schema_info",
    metadata,
    Column("id", Integer, primary_key=True),  # one row: id 1
    Column("version", Integer, nullable=False),
)


class DriverMissing(RuntimeError):
    """PLAYGROUND_DATABASE_URL names a database whose Python driver is not installed."""


class SchemaTooNew(RuntimeError):
    """The database was written by a newer playground than this one."""


def migrate(conn: Connection, url: str, *, fresh: bool = False) -> int:
    """Bring the database to SCHEMA_VERSION (in ``conn``'s transaction); the version found.

    A database made just now (``fresh``: its tables were created in the current layout) is
    at SCHEMA_VERSION; an older one without the version row is version 1 (the first layout
    had none).
    """
    row = conn.execute(select(schema_info.c.version).where(schema_info.c.id == 1)).first()
    found = (SCHEMA_VERSION if fresh else 1) if row is None else int(row.version)
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"The database at {make_url(url).render_as_string(hide_password=True)} was written "
            f"by a newer playground (schema {found}); this one reads schema {SCHEMA_VERSION}. "
            f"Upgrade the playground, or set PLAYGROUND_DATA_DIR (or PLAYGROUND_DATABASE_URL) "
            f"to another database."
        )
    for version in range(found, SCHEMA_VERSION):
        MIGRATIONS[version](conn)
    if row is None:
        conn.execute(insert(schema_info).values(id=1, version=SCHEMA_VERSION))
    elif found != SCHEMA_VERSION:
        conn.execute(
            update(schema_info).where(schema_info.c.id == 1).values(version=SCHEMA_VERSION)
        )
    return found


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
        try:
            return create_engine(parsed, pool_pre_ping=True)
        except ImportError as err:  # the driver is an extra (pyproject.toml)
            raise DriverMissing(
                f"PLAYGROUND_DATABASE_URL names {parsed.drivername}, whose driver is not "
                f"installed ({err.name}): for PostgreSQL install the postgres extra, "
                "pip install 'pytorch-model-playground[postgres]' (psycopg)"
            ) from err
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
