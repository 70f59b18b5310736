"""Workspaces and their models: specs, seeds, weights and frozen parameters.

The store is the record of truth; the worker keeps live ``nn.Module`` copies of
some of these records in memory. This implementation keeps records in memory
behind a lock; a persistent store implements the same methods.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Workspace:
    id: str
    token_hash: str
    created: float


@dataclass(frozen=True)
class ModelRecord:
    """One saved model. ``weights`` is a safetensors blob, or None: "as built from the seed"."""

    id: str
    workspace_id: str
    spec: dict[str, Any]  # the resolved spec ("auto" filled)
    seed: int
    params: int = 0  # parameter count, for listings without loading the model
    weights: bytes | None = None
    frozen: tuple[str, ...] = ()  # parameter names with requires_grad=False
    version: int = 1
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    @property
    def name(self) -> str:
        return str(self.spec.get("name", "Model"))

    def changed(self, **updates: Any) -> ModelRecord:
        return replace(self, version=self.version + 1, updated=time.time(), **updates)


class MemoryStore:
    """Records in a dict, guarded by one lock (route handlers and the worker share it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workspaces: dict[str, Workspace] = {}
        self._by_token: dict[str, str] = {}
        self._models: dict[str, ModelRecord] = {}

    # -- workspaces -------------------------------------------------------------------
    def create_workspace(self) -> tuple[Workspace, str]:
        token = secrets.token_urlsafe(32)
        ws = Workspace(uuid.uuid4().hex, hash_token(token), time.time())
        with self._lock:
            self._workspaces[ws.id] = ws
            self._by_token[ws.token_hash] = ws.id
        return ws, token

    def workspace_for_token(self, token: str) -> Workspace | None:
        with self._lock:
            ws_id = self._by_token.get(hash_token(token))
            return self._workspaces.get(ws_id) if ws_id else None

    def count_workspaces(self) -> int:
        with self._lock:
            return len(self._workspaces)

    # -- models -----------------------------------------------------------------------
    def new_model_id(self) -> str:
        return uuid.uuid4().hex[:16]

    def put_model(self, record: ModelRecord) -> None:
        with self._lock:
            self._models[record.id] = record

    def get_model(self, workspace_id: str, model_id: str) -> ModelRecord | None:
        with self._lock:
            rec = self._models.get(model_id)
        return rec if rec is not None and rec.workspace_id == workspace_id else None

    def list_models(self, workspace_id: str) -> list[ModelRecord]:
        with self._lock:
            recs = [r for r in self._models.values() if r.workspace_id == workspace_id]
        return sorted(recs, key=lambda r: r.created)

    def count_models(self, workspace_id: str) -> int:
        return len(self.list_models(workspace_id))

    def delete_model(self, workspace_id: str, model_id: str) -> bool:
        with self._lock:
            rec = self._models.get(model_id)
            if rec is None or rec.workspace_id != workspace_id:
                return False
            del self._models[model_id]
            return True
