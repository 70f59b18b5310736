"""What the app holds for its lifetime: settings, the store, the worker."""

from __future__ import annotations

from dataclasses import dataclass, field

from models.limits import Limits
from server.settings import Settings
from server.store import SqlStore
from server.trainings import TrainingManager
from server.uploads import UploadSlots
from server.verdicts import VerdictCache
from server.worker import Worker


@dataclass
class AppState:
    settings: Settings
    limits: Limits
    store: SqlStore
    worker: Worker
    trainings: TrainingManager
    uploads: UploadSlots  # weights uploads in progress
    verdicts: VerdictCache = field(default_factory=VerdictCache)  # /api/validate answers
