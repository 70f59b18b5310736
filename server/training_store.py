"""Trainings in the store: their rows, their numbered events and their checkpoints.

A training's slice is saved in one transaction (its events, the checkpoints it reached,
where it stands), inside the job that ran it: what a client was told is on disk, and a
server killed mid-training keeps every checkpoint it announced. The event numbers (``seq``)
are the Server-Sent Events' ids: a client that lost its connection, or a server that
restarted, replays the stream from the store.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update

from server.db import checkpoints, training_events, trainings

if TYPE_CHECKING:
    from server.store import SqlStore

ACTIVE = ("queued", "running", "paused")
FINISHED = ("done", "failed", "cancelled", "interrupted")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class TrainingRecord:
    id: str
    workspace_id: str
    model_id: str
    model_version: int
    config: dict[str, Any]
    status: str
    step: int
    total_steps: int
    epoch: int
    seq: int
    latest: dict[str, Any]
    error: str | None
    created: float
    updated: float

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


def _record(row: Any) -> TrainingRecord:
    return TrainingRecord(
        id=row.id,
        workspace_id=row.workspace_id,
        model_id=row.model_id,
        model_version=int(row.model_version),
        config=json.loads(row.config),
        status=row.status,
        step=int(row.step),
        total_steps=int(row.total_steps),
        epoch=int(row.epoch),
        seq=int(row.seq),
        latest=json.loads(row.latest),
        error=row.error,
        created=float(row.created),
        updated=float(row.updated),
    )


class TrainingStore:
    """The trainings' tables, written through the store's transactions and write lock."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def create(
        self,
        workspace_id: str,
        model_id: str,
        model_version: int,
        config: dict[str, Any],
        total_steps: int,
    ) -> TrainingRecord:
        now = time.time()
        values = {
            "id": uuid.uuid4().hex[:16],
            "workspace_id": workspace_id,
            "model_id": model_id,
            "model_version": model_version,
            "config": _dumps(config),
            "status": "queued",
            "step": 0,
            "total_steps": total_steps,
            "epoch": 0,
            "seq": 0,
            "latest": "{}",
            "error": None,
            "created": now,
            "updated": now,
        }
        with self._store._write() as conn:
            conn.execute(insert(trainings).values(values))
            row = conn.execute(select(trainings).where(trainings.c.id == values["id"])).one()
        return _record(row)

    def get(self, workspace_id: str, training_id: str) -> TrainingRecord | None:
        with self._store._read() as conn:
            row = conn.execute(
                select(trainings).where(
                    trainings.c.id == training_id, trainings.c.workspace_id == workspace_id
                )
            ).first()
        return None if row is None else _record(row)

    def by_id(self, training_id: str) -> TrainingRecord | None:
        with self._store._read() as conn:
            row = conn.execute(select(trainings).where(trainings.c.id == training_id)).first()
        return None if row is None else _record(row)

    def list(self, workspace_id: str, model_id: str | None = None) -> list[TrainingRecord]:
        query = select(trainings).where(trainings.c.workspace_id == workspace_id)
        if model_id is not None:
            query = query.where(trainings.c.model_id == model_id)
        with self._store._read() as conn:
            rows = conn.execute(query.order_by(trainings.c.created, trainings.c.id)).all()
        return [_record(row) for row in rows]

    def active(self, workspace_id: str | None = None) -> list[TrainingRecord]:
        query = select(trainings).where(trainings.c.status.in_(ACTIVE))
        if workspace_id is not None:
            query = query.where(trainings.c.workspace_id == workspace_id)
        with self._store._read() as conn:
            return [_record(row) for row in conn.execute(query).all()]

    def save(
        self,
        training_id: str,
        *,
        events: Sequence[dict[str, Any]] = (),
        checkpoints_reached: Sequence[tuple[int, bytes]] = (),
        **fields: Any,
    ) -> list[tuple[int, dict[str, Any]]]:
        """Append events and checkpoints and update the row, in one transaction.

        ``fields`` are columns of the row (status, step, epoch, latest, error). Returns the
        events with their numbers. A training deleted meanwhile (its model went) saves
        nothing and returns [].
        """
        now = time.time()
        if "latest" in fields:
            fields["latest"] = _dumps(fields["latest"])
        with self._store._write() as conn:
            row = conn.execute(
                select(trainings.c.seq).where(trainings.c.id == training_id).with_for_update()
            ).first()
            if row is None:
                return []
            seq = int(row.seq)
            numbered = []
            for event in events:
                seq += 1
                numbered.append((seq, event))
            if numbered:
                conn.execute(
                    insert(training_events),
                    [
                        {"training_id": training_id, "seq": s, "data": _dumps(e)}
                        for s, e in numbered
                    ],
                )
            if checkpoints_reached:
                conn.execute(
                    insert(checkpoints),
                    [
                        {"training_id": training_id, "step": step, "weights": blob, "created": now}
                        for step, blob in checkpoints_reached
                    ],
                )
            conn.execute(
                update(trainings)
                .where(trainings.c.id == training_id)
                .values(seq=seq, updated=now, **fields)
            )
        return numbered

    def events_after(
        self, training_id: str, seq: int, limit: int = 1000
    ) -> list[tuple[int, dict[str, Any]]]:
        with self._store._read() as conn:
            rows = conn.execute(
                select(training_events.c.seq, training_events.c.data)
                .where(training_events.c.training_id == training_id, training_events.c.seq > seq)
                .order_by(training_events.c.seq)
                .limit(limit)
            ).all()
        return [(int(r.seq), json.loads(r.data)) for r in rows]

    def checkpoint_list(self, training_id: str) -> list[dict[str, Any]]:
        with self._store._read() as conn:
            rows = conn.execute(
                select(
                    checkpoints.c.step,
                    func.length(checkpoints.c.weights).label("nbytes"),
                    checkpoints.c.created,
                )
                .where(checkpoints.c.training_id == training_id)
                .order_by(checkpoints.c.step)
            ).all()
        return [{"step": int(r.step), "bytes": int(r.nbytes), "created": r.created} for r in rows]

    def checkpoint(self, training_id: str, step: int) -> bytes | None:
        with self._store._read() as conn:
            row = conn.execute(
                select(checkpoints.c.weights).where(
                    checkpoints.c.training_id == training_id, checkpoints.c.step == step
                )
            ).first()
        return None if row is None else bytes(row.weights)

    def interrupt_all(self) -> int:
        """At start-up: a training that was active when the server stopped is interrupted
        (its checkpoints stay); each gets a closing status event. How many there were."""
        gone = self.active()
        for rec in gone:
            self.save(
                rec.id,
                events=[{"kind": "status", "status": "interrupted", "step": rec.step}],
                status="interrupted",
                error="The server stopped while this training ran; its checkpoints are kept.",
            )
        return len(gone)
