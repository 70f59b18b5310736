"""Workspaces and their models, kept in a SQL database through SQLAlchemy Core.

The store is the record of truth; the worker keeps live ``nn.Module`` copies of some
records in memory. SQLite in the data directory is the default, any other SQLAlchemy
URL works too (PostgreSQL for a larger deployment): see ``server.db``.

Every save and delete is one transaction: a crash leaves the old version of a record
or the new one, never a mix. Weights are safetensors bytes in a BLOB column (NULL: "as
built from the seed"). A record read back leaves its weights in the database until the
worker builds the model (:meth:`ModelRecord.load_weights`), so listing models or serving
a model that is already live never copies megabytes.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, inspect, select, update
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import Select

from models.errors import SpecError
from server.db import META_COLUMNS, make_engine, metadata, migrate, models, workspaces
from server.record_cache import RecordCache
from server.records import ModelRecord, Workspace, hash_token
from server.training_store import TrainingStore

__all__ = ["ModelRecord", "SqlStore", "Workspace", "hash_token"]

TOUCH_EVERY_S = 60.0  # a workspace's last_used is written at most this often
TOKEN_CACHE_SIZE = 4096
TOKEN_CACHE_TTL_S = 300.0  # another process may delete a workspace (TTL): forget after this


def _gone(what: str) -> SpecError:
    return SpecError(
        f"{what}_not_found",
        f"The {what} was deleted while this request ran; nothing was saved.",
    )


def _conflict(model_id: str, stored: int) -> SpecError:
    return SpecError(
        "conflict",
        f"Model '{model_id}' was changed by another request meanwhile (it is now at version "
        f"{stored}); read it again and retry.",
    )


class SqlStore:
    """Workspaces and model records in a SQL database; safe to share between threads.

    With SQLite the server process is the database's only writer (one process per data
    directory; its worker processes, ``PLAYGROUND_WORKERS``, report each model they save and
    the cache forgets it), so it also keeps the records it read or wrote in memory
    (:meth:`cached_model`, ``server.record_cache``): a request on a model then needs no
    database read and no thread hop. With any other database (several servers may share
    it) nothing is cached.
    """

    def __init__(self, url: str, cache_records: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._shared_connection = isinstance(self.engine.pool, StaticPool)
        self._writer = self.engine.execution_options(sqlite_immediate=True)
        self._write_lock = threading.RLock()  # one writer at a time in this process
        self._mem_lock = threading.Lock()  # the token cache and the pending last_used marks
        self._tokens: OrderedDict[str, tuple[Workspace, float]] = OrderedDict()
        self._touched: dict[str, float] = {}  # workspace id -> when last_used was last marked
        self._pending: dict[str, float] = {}  # last_used values not yet written
        # a worker process caches nothing: the server's process deletes models it may hold
        self.records = RecordCache(enabled=cache_records and self.engine.dialect.name == "sqlite")
        fresh = not inspect(self.engine).has_table(models.name)  # made now: current layout
        metadata.create_all(self.engine)
        with self._write() as conn:
            # raises SchemaTooNew: never guessed at
            self.schema_found = migrate(conn, url, fresh=fresh)
        self.trainings = TrainingStore(self)

    # -- transactions ---------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One transaction that commits (durably) on exit, or rolls back on an error."""
        with self._write_lock, self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        if self._shared_connection:
            with self._write_lock, self.engine.begin() as conn:
                yield conn
        else:
            with self.engine.begin() as conn:
                yield conn

    def close(self) -> None:
        """Write the pending last_used marks and close the connections."""
        self.flush_usage()
        self.engine.dispose()

    # -- workspaces -----------------------------------------------------------------------
    def create_workspace(self) -> tuple[Workspace, str]:
        token = secrets.token_urlsafe(32)
        now = time.time()
        ws = Workspace(uuid.uuid4().hex, hash_token(token), now, now)
        with self._write() as conn:
            conn.execute(
                insert(workspaces).values(
                    id=ws.id, token_hash=ws.token_hash, created=now, last_used=now
                )
            )
        return ws, token

    def workspace_for_token(self, token: str) -> Workspace | None:
        """The workspace the token opens (cached), marking it used (written in batches)."""
        token_hash = hash_token(token)
        now = time.time()
        with self._mem_lock:
            hit = self._tokens.get(token_hash)
            if hit is not None and now - hit[1] < TOKEN_CACHE_TTL_S:
                self._tokens.move_to_end(token_hash)
                self._mark_used(hit[0].id, now)
                return hit[0]
        with self._read() as conn:
            row = conn.execute(
                select(workspaces).where(workspaces.c.token_hash == token_hash)
            ).first()
        if row is None:
            return None
        ws = Workspace(row.id, row.token_hash, row.created, row.last_used)
        with self._mem_lock:
            self._tokens[token_hash] = (ws, now)
            while len(self._tokens) > TOKEN_CACHE_SIZE:
                self._tokens.popitem(last=False)
            self._mark_used(ws.id, now)
        return ws

    def _mark_used(self, workspace_id: str, now: float) -> None:
        if now - self._touched.get(workspace_id, 0.0) >= TOUCH_EVERY_S:
            self._touched[workspace_id] = now
            self._pending[workspace_id] = now

    def flush_usage(self) -> int:
        """Write the pending last_used marks in one transaction; how many were written."""
        with self._mem_lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        stmt = (
            update(workspaces)
            .where(workspaces.c.id == bindparam("ws_id"))
            .values(last_used=bindparam("when"))
        )
        with self._write() as conn:
            conn.execute(stmt, [{"ws_id": k, "when": v} for k, v in pending.items()])
        return len(pending)

    def count_workspaces(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(workspaces)).scalar_one())

    def delete_workspace(self, workspace_id: str) -> list[str]:
        """Delete a workspace and its models; the ids of the models deleted."""
        return self._delete_workspaces([workspace_id])[1]

    def delete_unused_workspaces(self, unused_since: float) -> tuple[int, list[str]]:
        """Delete the workspaces not used since ``unused_since`` (epoch seconds) with their
        models; how many workspaces went, and the ids of their models."""
        self.flush_usage()
        with self._read() as conn:
            ids = list(
                conn.execute(
                    select(workspaces.c.id).where(workspaces.c.last_used < unused_since)
                ).scalars()
            )
        return self._delete_workspaces(ids, unused_since)

    def _delete_workspaces(
        self, ids: list[str], unused_since: float | None = None
    ) -> tuple[int, list[str]]:
        gone, model_ids = 0, []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            with self._write_lock:  # the cache is updated in commit order
                with self._write() as conn:
                    if unused_since is not None:  # used since they were picked: keep them
                        chunk = list(
                            conn.execute(
                                select(workspaces.c.id).where(
                                    workspaces.c.id.in_(chunk),
                                    workspaces.c.last_used < unused_since,
                                )
                            ).scalars()
                        )
                    model_ids += conn.execute(
                        select(models.c.id).where(models.c.workspace_id.in_(chunk))
                    ).scalars()
                    conn.execute(delete(models).where(models.c.workspace_id.in_(chunk)))
                    gone += conn.execute(
                        delete(workspaces).where(workspaces.c.id.in_(chunk))
                    ).rowcount
                with self._mem_lock:
                    dead = set(chunk)
                    for token_hash, (ws, _) in list(self._tokens.items()):
                        if ws.id in dead:
                            del self._tokens[token_hash]
                    for ws_id in dead:
                        self._touched.pop(ws_id, None)
                        self._pending.pop(ws_id, None)
                self.records.workspaces_deleted(dead)
        return gone, model_ids

    # -- models ---------------------------------------------------------------------------
    def new_model_id(self) -> str:
        return uuid.uuid4().hex[:16]

    def put_model(self, record: ModelRecord) -> ModelRecord | None:
        """Save a record durably in one transaction (insert at version 1, else update).

        Returns the record as stored (its weights left in the database, read on demand), or
        None when nothing was written because a newer version is already stored.

        A record never goes back in time: versions are made and saved one after another on
        the worker (``Worker.commit``), so a stored newer version already holds an older
        one's change, and saving the older one again is a no-op. A version after 1
        whose model is gone (deleted while its request ran) is a 404 and is not brought back.
        """
        values = {
            "spec": json.dumps(record.spec, separators=(",", ":")),
            "seed": record.seed,
            "params": record.params,
            "frozen": json.dumps(list(record.frozen)),
            "version": record.version,
            "updated": record.updated,
        }
        if not record.weights_deferred:  # deferred: the stored weights stay as they are
            values["weights"] = record.weights
        mine = (models.c.id == record.id) & (models.c.workspace_id == record.workspace_id)
        with self._write_lock:  # the cache is updated in commit order
            with self._write() as conn:
                stored = conn.execute(
                    select(models.c.version).where(mine).with_for_update()
                ).first()
                if stored is not None:
                    if stored.version >= record.version:
                        return None  # already there, or superseded by a later save
                    conn.execute(update(models).where(mine).values(values))
                    has_weights = record.weights_deferred or record.weights is not None
                else:
                    if record.version > 1:
                        raise _gone("model")
                    owner = select(workspaces.c.id).where(workspaces.c.id == record.workspace_id)
                    if conn.execute(owner).first() is None:
                        raise _gone("workspace")
                    values["weights"] = record.load_weights()
                    has_weights = values["weights"] is not None
                    conn.execute(
                        insert(models).values(
                            id=record.id,
                            workspace_id=record.workspace_id,
                            created=record.created,
                            preset=record.preset,
                            **values,
                        )
                    )
            saved = replace(record, weights=None, weights_loader=None)  # weights: in the store
            saved = self._bind(saved, has_weights)
            self.records.committed(record.workspace_id, record.id, saved)
        return saved

    def cached_model(self, workspace_id: str, model_id: str) -> ModelRecord | None:
        """The model's current record when this process knows it, else None (read it)."""
        return self.records.get(workspace_id, model_id)

    def _bind(self, record: ModelRecord, has_weights: bool) -> ModelRecord:
        """The record as read back from the store: weights left there, latest on demand."""
        loader = partial(self._read_weights, record.id, record.version) if has_weights else None
        return replace(
            record,
            weights_loader=loader,
            fetch_latest=partial(self.get_model, record.workspace_id, record.id),
        )

    def _record(self, row: Any) -> ModelRecord:
        record = ModelRecord(
            id=row.id,
            workspace_id=row.workspace_id,
            spec=json.loads(row.spec),
            seed=int(row.seed),
            params=int(row.params),
            frozen=tuple(json.loads(row.frozen)),
            version=int(row.version),
            created=float(row.created),
            updated=float(row.updated),
            preset=row.preset,
        )
        return self._bind(record, bool(row.has_weights))

    def _select_records(self) -> Select:
        return select(*META_COLUMNS, models.c.weights.is_not(None).label("has_weights"))

    def _read_weights(self, model_id: str, version: int) -> bytes | None:
        with self._read() as conn:
            row = conn.execute(
                select(models.c.version, models.c.weights).where(models.c.id == model_id)
            ).first()
        if row is None:
            raise _gone("model")
        if row.version != version:  # saved again since this record was read
            raise _conflict(model_id, row.version)
        return None if row.weights is None else bytes(row.weights)

    def get_model(self, workspace_id: str, model_id: str) -> ModelRecord | None:
        generation = self.records.generation
        with self._read() as conn:
            row = conn.execute(
                self._select_records().where(
                    models.c.id == model_id, models.c.workspace_id == workspace_id
                )
            ).first()
        if row is None:
            return None
        record = self._record(row)
        self.records.fill(record, generation)  # unless a commit happened meanwhile
        return record

    def list_models(self, workspace_id: str) -> list[ModelRecord]:
        """The workspace's records, oldest first (weights left in the store)."""
        with self._read() as conn:
            rows = conn.execute(
                self._select_records()
                .where(models.c.workspace_id == workspace_id)
                .order_by(models.c.created, models.c.id)
            ).all()
        return [self._record(row) for row in rows]

    def count_models(self, workspace_id: str) -> int:
        with self._read() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(models)
                    .where(models.c.workspace_id == workspace_id)
                ).scalar_one()
            )

    def delete_model(self, workspace_id: str, model_id: str) -> bool:
        with self._write_lock:  # the cache is updated in commit order
            with self._write() as conn:
                result = conn.execute(
                    delete(models).where(
                        models.c.id == model_id, models.c.workspace_id == workspace_id
                    )
                )
            self.records.committed(workspace_id, model_id, None)
        return result.rowcount > 0
