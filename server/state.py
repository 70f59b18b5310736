"""What the app holds for its lifetime: settings, the store, the worker."""

from __future__ import annotations

from dataclasses import dataclass

from models.limits import Limits
from server.settings import Settings
from server.store import SqlStore
from server.worker import Worker


@dataclass
class AppState:
    settings: Settings
    limits: Limits
    store: SqlStore
    worker: Worker
