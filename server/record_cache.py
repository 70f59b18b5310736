"""The store's memory of current model records (SQLite only: see ``SqlStore``).

It holds the stored version of a record or nothing. The store reports every commit
(:meth:`RecordCache.committed`, called in commit order under its write lock); a record read
from the database is only remembered when no commit happened while it was read
(:meth:`RecordCache.fill` with the :attr:`generation` seen before the read), so a model
deleted meanwhile never comes back from here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from server.records import ModelRecord

SIZE = 4096  # records kept; the least recently used leave first


class RecordCache:
    """Least recently used model records by (workspace id, model id); thread-safe."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.generation = 0  # commits seen: a read that straddles one is not remembered
        self._records: OrderedDict[tuple[str, str], ModelRecord] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, workspace_id: str, model_id: str) -> ModelRecord | None:
        if not self.enabled:
            return None
        with self._lock:
            record = self._records.get((workspace_id, model_id))
            if record is not None:
                self._records.move_to_end((workspace_id, model_id))
            return record

    def fill(self, record: ModelRecord, generation: int) -> None:
        """Remember a record read from the database, unless a commit happened meanwhile."""
        if not self.enabled:
            return
        with self._lock:
            if self.generation == generation:
                self._remember(record)

    def committed(self, workspace_id: str, model_id: str, record: ModelRecord | None) -> None:
        """After a commit: the model's new record (None: deleted) replaces the remembered one."""
        with self._lock:
            self.generation += 1
            if not self.enabled:
                return
            if record is None:
                self._records.pop((workspace_id, model_id), None)
            else:
                self._remember(record)

    def workspaces_deleted(self, workspace_ids: Iterable[str]) -> None:
        dead = set(workspace_ids)
        with self._lock:
            self.generation += 1
            for key in [k for k in self._records if k[0] in dead]:
                del self._records[key]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def __len__(self) -> int:
        return len(self._records)

    def _remember(self, record: ModelRecord) -> None:  # under _lock
        key = (record.workspace_id, record.id)
        self._records[key] = record
        self._records.move_to_end(key)
        while len(self._records) > SIZE:
            self._records.popitem(last=False)
